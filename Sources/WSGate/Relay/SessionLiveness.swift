import NIOCore

/// Whether a session is still worth keeping: the idle timeout (no frame either way, pongs aside)
/// and the client liveness check (a quiet client is pinged; one that stays silent as long again is
/// dropped). The session feeds it what it hears and does what ``sweep(at:)`` says.
struct SessionLiveness {
    enum Action: Equatable {
        case none
        /// Ping the client; report with ``pingSent(at:)`` once one went out.
        case ping
        /// Close both legs, the client with 1001; `reason` goes to the log.
        case close(reason: String, missedPong: Bool)
    }

    let idleTimeout: TimeAmount?
    let pingInterval: TimeAmount?
    private var lastActivity: NIODeadline
    private var lastHeardFromClient: NIODeadline
    /// When the outstanding ping went out; nil: none is.
    private var outstandingPing: NIODeadline?

    init(idleTimeout: TimeAmount?, pingInterval: TimeAmount?, now: NIODeadline) {
        self.idleTimeout = idleTimeout
        self.pingInterval = pingInterval
        self.lastActivity = now
        self.lastHeardFromClient = now
    }

    /// How often the session needs a sweep; nil: never (both checks off).
    var sweepInterval: TimeAmount? {
        [self.idleTimeout, self.pingInterval].compactMap { $0 }.min()
    }

    /// A frame other than a pong, either way.
    mutating func activity(at now: NIODeadline) {
        self.lastActivity = now
    }

    /// Any frame from the client, pongs included: it is alive, and a ping out is answered.
    mutating func heardFromClient(at now: NIODeadline) {
        self.lastHeardFromClient = now
        self.outstandingPing = nil
    }

    mutating func pingSent(at now: NIODeadline) {
        self.outstandingPing = now
    }

    func sweep(at now: NIODeadline) -> Action {
        if let timeout = self.idleTimeout, now - self.lastActivity >= timeout {
            return .close(reason: "idle timeout", missedPong: false)
        }
        guard let interval = self.pingInterval else { return .none }
        if let sent = self.outstandingPing {
            return now - sent >= interval ? .close(reason: "no pong within \(interval.prettyDescription)", missedPong: true) : .none
        }
        return now - self.lastHeardFromClient >= interval ? .ping : .none
    }
}
