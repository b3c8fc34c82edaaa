import Logging
import NIOCore

/// One proxied WebSocket session: its two legs, its counters, its idle timer, and the one log line
/// written when both legs are closed.
final class RelaySession: GoingAway {
    enum Side: String {
        case client
        case backend
    }

    struct Counters {
        var bytes = 0
        var messages = 0
    }

    let logger: Logger
    /// The registry's id for it (the admin API's handle), set when it is listed.
    var id: UInt64 = 0
    private let clientSocketAddress: SocketAddress?
    private let peerSocketAddress: SocketAddress?
    /// Formatted only when a line is logged.
    var clientAddress: String { self.clientSocketAddress?.loggable ?? "?" }
    let route: String
    /// Kept as parsed, formatted only when the session's line is logged.
    private let backendURL: BackendURL
    let eventLoop: EventLoop
    let closeTimeout: TimeAmount
    private let started = NIODeadline.now()
    private(set) var fromClient = Counters()
    private(set) var fromBackend = Counters()
    /// The close code exchanged with the client, and who started the close.
    private var clientCloseCode: WebSocketCloseCode?
    private var closeInitiator: String?
    private var closeReason = ""
    private var openLegs = 2
    /// The idle timeout and the client's liveness pings.
    private var liveness: SessionLiveness
    private var sweeper: IdleSweeper?
    /// A timer for the session's deadline, armed only in its last second so the close lands on
    /// time rather than at the next sweep (timers for every session would slow every cancel).
    private var deadlineTimer: Scheduled<Void>?
    /// Where the session is listed for shutdown; it leaves when both legs are closed.
    private let registry: SessionRegistry

    /// Strong (weak references slow down every retain of their target); released when the session ends.
    var clientLeg: WebSocketLeg?
    var backendLeg: RelayPartner?

    /// `http/1.1` or `h2`: what carries the client leg.
    let clientProtocol: String

    /// Who the client authenticated as, when the route has `auth`.
    private let identity: String?
    /// A token from a token file: checked each sweep, the session ends when it leaves the file.
    private var tokenLease: TokenLease?
    /// Places in the route's session limits, given back when the session ends.
    private var quotaTickets: [QuotaTicket]
    /// Set when the gateway itself decided to end the session (the `reason` label of its metric).
    private var gatewayReason: GatewayCloseReason?
    /// This route's metric handles (shared by its sessions).
    let metrics: SessionMetrics
    /// On routes with `record`.
    var recorder: SessionRecorder?

    init(logger: Logger, clientAddress: SocketAddress?, peerAddress: SocketAddress? = nil, route: RouteConfiguration, backend: BackendURL, identity: String?, credentials: SessionCredentials, eventLoop: EventLoop, closeTimeout: TimeAmount, clientProtocol: String, registry: SessionRegistry) {
        self.registry = registry
        self.clientProtocol = clientProtocol
        self.logger = logger
        self.clientSocketAddress = clientAddress
        // Logged only when it differs: the client came through a trusted proxy's X-Forwarded-For.
        self.peerSocketAddress = peerAddress == clientAddress ? nil : peerAddress
        self.route = route.path
        self.backendURL = backend
        self.identity = identity
        self.tokenLease = credentials.lease
        self.quotaTickets = credentials.quotaTickets
        self.metrics = SessionMetrics.forSession(route: route.path, backend: backend, protocol: clientProtocol)
        self.eventLoop = eventLoop
        self.liveness = SessionLiveness(idleTimeout: route.limits.idleTimeout, pingInterval: route.limits.pingInterval, maxDuration: route.limits.maxSessionDuration,
                                        credentialExpiry: credentials.expiry, checksCredential: credentials.lease != nil, now: self.started)
        self.closeTimeout = closeTimeout
    }

    func count(from side: Side, messages: Int, bytes: Int) {
        switch side {
        case .client:
            self.fromClient.messages += messages
            self.fromClient.bytes += bytes
        case .backend:
            self.fromBackend.messages += messages
            self.fromBackend.bytes += bytes
        }
    }

    /// Records the first close seen on the client leg: `code` nil is a close frame without a code
    /// (1005); a connection that ended without any close frame is recorded as 1006 by its caller.
    func recordClientClose(code: WebSocketCloseCode?, initiator: String, reason: String) {
        guard self.closeInitiator == nil else { return }
        self.clientCloseCode = code ?? .noStatusReceived
        self.closeInitiator = initiator
        self.closeReason = reason
    }

    /// The client itself closed with 1001 Going Away: what browsers send when a page is closed or
    /// reloaded, which a resumable session treats as a drop rather than an end.
    var clientClosedGoingAway: Bool {
        self.closeInitiator == "client" && self.clientCloseCode == .goingAway
    }

    func noteActivity(at now: NIODeadline = .now()) {
        self.liveness.activity(at: now)
    }

    /// Any frame from the client, pongs included: it is alive.
    func heardFromClient(at now: NIODeadline) {
        self.liveness.heardFromClient(at: now)
    }

    func startIdleTimer() {
        guard let period = self.liveness.sweepPeriod(now: .now()) else { return }
        let sweeper = IdleSweeper.current(on: self.eventLoop)
        sweeper.add(self, period: period)
        self.sweeper = sweeper
    }

    /// Called by the sweeper: end a session past its deadline, idle, or whose token was revoked;
    /// ping a quiet client, drop a silent one.
    func sweep(at now: NIODeadline) {
        guard self.openLegs == 2 else { return }
        if self.tokenLease?.isStillValid() == false {
            self.tokenLease = nil
            self.closeByGateway(.credentialsRevoked)
            return
        }
        switch self.liveness.sweep(at: now) {
        case .none:
            if self.clientLeg?.isThrottled == true, self.liveness.probeThrottledClient(at: now) {
                _ = self.clientLeg?.sendLivenessPing()
            }
            if self.deadlineTimer == nil, let deadline = self.liveness.deadline, deadline.at - now <= SessionLiveness.longestPeriod {
                self.deadlineTimer = self.eventLoop.assumeIsolated().scheduleTask(deadline: deadline.at) { [weak self] in
                    self?.sweep(at: .now())
                }
            }
        case .ping:
            // A frame to the client half written: the ping waits for the next sweep.
            if self.clientLeg?.sendLivenessPing() == true { self.liveness.pingSent(at: now) }
        case .close(let reason, let detail):
            self.closeByGateway(reason, detail: detail)
        }
    }

    /// Both legs close, the client with the reason's code (or `code`, an operator's choice) and
    /// `detail` (the reason's own words by default); logged at info, since the client did not ask.
    func closeByGateway(_ reason: GatewayCloseReason, code: WebSocketCloseCode? = nil, detail: String? = nil) {
        guard self.openLegs == 2, self.gatewayReason == nil else { return }
        self.gatewayReason = reason
        self.stopTimers()
        let code = code ?? reason.code
        let detail = detail ?? reason.closeFrameReason
        self.logger.info("closing session: \(detail)", metadata: ["client": "\(self.clientAddress)", "route": "\(self.route)", "reason": "\(reason.rawValue)", "close_code": "\(code)"])
        self.recordClientClose(code: code, initiator: reason == .admin ? "admin" : "gateway", reason: detail)
        self.clientLeg?.relayClose(code: code, reason: detail)
        if reason.meansClientVanished {
            self.backendLeg?.relayPeerVanished()
        } else {
            self.backendLeg?.relayClose(code: .goingAway, reason: detail)
        }
    }

    private func stopTimers() {
        self.sweeper?.remove(self)
        self.sweeper = nil
        self.deadlineTimer?.cancel()
        self.deadlineTimer = nil
    }

    /// The gateway is shutting down: close both legs, the client with 1001 Going Away.
    func goAway(reason: String) {
        guard self.openLegs == 2, self.gatewayReason == nil else { return }
        self.gatewayReason = .shutdown
        self.recordClientClose(code: .goingAway, initiator: "gateway", reason: reason)
        self.clientLeg?.relayClose(code: .goingAway, reason: reason)
        self.backendLeg?.relayClose(code: .goingAway, reason: reason)
    }

    /// The backend as printed (what a target drain names).
    var backendTarget: String { self.backendURL.description }

    /// What the admin API lists; nil once the session has ended.
    func snapshot(now: NIODeadline = .now()) -> SessionSnapshot? {
        guard self.openLegs > 0 else { return nil }
        return SessionSnapshot(
            id: self.id, route: self.route, user: self.identity, client: self.clientAddress, backend: self.backendTarget,
            clientProtocol: self.clientProtocol, age: now - self.started,
            bytesIn: self.fromClient.bytes, bytesOut: self.fromBackend.bytes, messagesIn: self.fromClient.messages, messagesOut: self.fromBackend.messages,
            closing: self.closeInitiator != nil || self.openLegs < 2
        )
    }

    /// The `reason` label: the gateway's own reason, else who closed (`client`, `backend`, `network`
    /// for a connection lost without a close), `protocol_error` for a peer the gateway closed on.
    private var endReason: String {
        if let reason = self.gatewayReason { return reason.rawValue }
        switch self.closeInitiator {
        case nil: return "network"
        case "gateway": return "protocol_error"
        case let initiator?: return initiator
        }
    }

    func legFinished() {
        self.openLegs -= 1
        guard self.openLegs == 0 else { return }
        self.stopTimers()
        for ticket in self.quotaTickets { ticket.release() }
        self.quotaTickets = []
        self.clientLeg = nil
        self.backendLeg = nil
        defer { self.registry.remove(self) }  // after the line, which tests and operators wait for
        let elapsed = NIODeadline.now() - self.started
        let closeCode = self.clientCloseCode?.rawValue ?? 1006
        self.metrics.active.decrement()
        self.metrics.bytesIn.increment(by: self.fromClient.bytes)
        self.metrics.bytesOut.increment(by: self.fromBackend.bytes)
        self.metrics.messagesIn.increment(by: self.fromClient.messages)
        self.metrics.messagesOut.increment(by: self.fromBackend.messages)
        self.metrics.duration.recordNanoseconds(elapsed.nanoseconds)
        self.metrics.closed(code: closeCode, by: self.closeInitiator ?? "network")
        self.metrics.ended(reason: self.endReason)
        self.recorder?.finish(closeCode: closeCode, closedBy: self.closeInitiator ?? "network")
        self.recorder = nil
        // The line's metadata is built only when it will be written.
        guard self.logger.logLevel <= .info else { return }
        let duration = Double(elapsed.nanoseconds) / 1e9
        var metadata: Logger.Metadata = [
            "client": "\(self.clientAddress)",
            "route": "\(self.route)",
            "backend": "\(self.backendURL)",
            "protocol": "\(self.clientProtocol)",
            "bytes_in": "\(self.fromClient.bytes)",
            "bytes_out": "\(self.fromBackend.bytes)",
            "messages_in": "\(self.fromClient.messages)",
            "messages_out": "\(self.fromBackend.messages)",
            "duration": "\(String(format: "%.3f", duration))s",
            "close_code": "\(closeCode)",
            "closed_by": "\(self.closeInitiator ?? "network")",
        ]
        if !self.closeReason.isEmpty { metadata["close_reason"] = "\(self.closeReason)" }
        if let identity = self.identity { metadata["user"] = "\(identity)" }
        if let peer = self.peerSocketAddress { metadata["peer"] = "\(peer.loggable)" }
        self.logger.info("session ended", metadata: metadata)
    }
}
