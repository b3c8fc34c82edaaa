import NIOCore

/// Whether a session is still worth keeping: the idle timeout (no frame either way, pongs aside),
/// the client liveness check (a quiet client is pinged; one that stays silent as long again is
/// dropped), and the session's deadline (the route's `max_session_duration`, or when its
/// credentials expire, whichever comes first). The session feeds it what it hears and does what
/// ``sweep(at:)`` says.
struct SessionLiveness {
    enum Action: Equatable {
        case none
        /// Ping the client; report with ``pingSent(at:)`` once one went out.
        case ping
        /// Close both legs with the reason's code; `detail` goes to the log and the close frame.
        case close(GatewayCloseReason, detail: String)
    }

    let idleTimeout: TimeAmount?
    let pingInterval: TimeAmount?
    private var lastActivity: NIODeadline
    private var lastHeardFromClient: NIODeadline
    /// The last ping to a client held back by its rate limit (``probeThrottledClient(at:)``).
    private var lastProbe: NIODeadline
    /// When the outstanding ping went out; nil: none is.
    private var outstandingPing: NIODeadline?
    /// The earliest deadline and why it ends the session; nil: none.
    private(set) var deadline: (at: NIODeadline, reason: GatewayCloseReason)?
    /// The session's credential can be revoked while it runs (a token file): it is checked each sweep.
    let checksCredential: Bool

    init(idleTimeout: TimeAmount?, pingInterval: TimeAmount?, maxDuration: TimeAmount? = nil, credentialExpiry: NIODeadline? = nil,
         checksCredential: Bool = false, now: NIODeadline) {
        self.idleTimeout = idleTimeout
        self.pingInterval = pingInterval
        self.lastActivity = now
        self.lastHeardFromClient = now
        self.lastProbe = now
        self.checksCredential = checksCredential
        if let maxDuration { self.deadline = (now + maxDuration, .maxSessionDuration) }
        if let credentialExpiry, credentialExpiry < (self.deadline?.at ?? .distantFuture) {
            self.deadline = (credentialExpiry, .credentialsExpired)
        }
    }

    /// How often the session needs a sweep; nil: never (every check off). Each check is met within
    /// a fraction of its own span — a quarter of a timeout, an eighth of the time left before the
    /// deadline, a quarter second for a revocable credential — and never less often than once a
    /// second (the sweeper's longest period) nor more often than every 50 ms.
    func sweepPeriod(now: NIODeadline) -> TimeAmount? {
        var spans: [TimeAmount] = []
        if let idle = self.idleTimeout { spans.append(.nanoseconds(idle.nanoseconds / 4)) }
        if let ping = self.pingInterval { spans.append(.nanoseconds(ping.nanoseconds / 4)) }
        if let deadline = self.deadline { spans.append(.nanoseconds((deadline.at - now).nanoseconds / 8)) }
        if self.checksCredential { spans.append(.milliseconds(250)) }
        guard let shortest = spans.min() else { return nil }
        return max(Self.shortestPeriod, min(Self.longestPeriod, shortest))
    }

    static let shortestPeriod = TimeAmount.milliseconds(50)
    static let longestPeriod = TimeAmount.seconds(1)

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

    /// Whether to ping a client whose reads its rate limit holds back, once a ping interval. Such a
    /// client is heard from only as fast as the limit reads it, and TCP delivers a connection's end
    /// after its data: a client that left with a full buffer would keep its session open for as
    /// long as that buffer takes to read. A ping to a gone client's socket is answered with a reset,
    /// which ends the session. No pong is awaited: it is queued behind the client's unread bytes.
    mutating func probeThrottledClient(at now: NIODeadline) -> Bool {
        guard let interval = self.pingInterval, now - self.lastProbe >= interval else { return false }
        self.lastProbe = now
        return true
    }

    /// Deadlines first: a session past its end closes for that reason even if it is also idle.
    func sweep(at now: NIODeadline) -> Action {
        if let deadline = self.deadline, now >= deadline.at {
            return .close(deadline.reason, detail: deadline.reason.closeFrameReason)
        }
        if let timeout = self.idleTimeout, now - self.lastActivity >= timeout {
            return .close(.idleTimeout, detail: GatewayCloseReason.idleTimeout.closeFrameReason)
        }
        guard let interval = self.pingInterval else { return .none }
        if let sent = self.outstandingPing {
            return now - sent >= interval ? .close(.missedPong, detail: "no pong within \(interval.prettyDescription)") : .none
        }
        return now - self.lastHeardFromClient >= interval ? .ping : .none
    }
}
