import Metrics
import NIOConcurrencyHelpers
import NIOCore

/// wsgate's metrics, through swift-metrics (exported by the `wsgate` command in Prometheus text on
/// the admin listener). Recorded per session and per refusal, never per frame: a session's bytes
/// and messages are added when it ends, through handles made once per route (a registry lookup
/// per metric per session cost ~10% of a connection cycle).
final class SessionMetrics: Sendable {
    struct Key: Hashable {
        var route: String
        var backend: String
        var clientProtocol: String
    }

    let started: Counter
    let active: Meter
    let bytesIn: Counter
    let bytesOut: Counter
    let messagesIn: Counter
    let messagesOut: Counter
    let duration: Timer
    let connect: Timer
    /// Each time a session's reads paused on its rate limit.
    let throttled: Counter
    private let route: String
    /// Close counters by code and initiator: few distinct values per route.
    private let closes = NIOLockedValueBox<[String: Counter]>([:])
    /// Ended sessions by reason: a fixed set per route.
    private let endings = NIOLockedValueBox<[String: Counter]>([:])

    private init(_ key: Key) {
        let session = [("route", key.route), ("backend", key.backend), ("protocol", key.clientProtocol)]
        let route = [("route", key.route)]
        self.route = key.route
        self.started = Counter(label: "wsgate_sessions_total", dimensions: session)
        self.active = Meter(label: "wsgate_sessions_active", dimensions: session)
        self.bytesIn = Counter(label: "wsgate_client_bytes_total", dimensions: route + [("direction", "in")])
        self.bytesOut = Counter(label: "wsgate_client_bytes_total", dimensions: route + [("direction", "out")])
        self.messagesIn = Counter(label: "wsgate_messages_total", dimensions: route + [("direction", "in")])
        self.messagesOut = Counter(label: "wsgate_messages_total", dimensions: route + [("direction", "out")])
        self.duration = Timer(label: "wsgate_session_duration_seconds", dimensions: route, preferredDisplayUnit: .seconds)
        self.connect = Timer(label: "wsgate_backend_connect_seconds", dimensions: [("route", key.route), ("backend", key.backend)], preferredDisplayUnit: .seconds)
        self.throttled = Counter(label: "wsgate_rate_limit_pauses_total", dimensions: route)
    }

    private static let all = NIOLockedValueBox<[Key: SessionMetrics]>([:])

    static func forSession(route: String, backend: BackendURL, protocol clientProtocol: String) -> SessionMetrics {
        let key = Key(route: route, backend: GatewayMetrics.kind(backend), clientProtocol: clientProtocol)
        return self.all.withLockedValue { all in
            if let existing = all[key] { return existing }
            let made = SessionMetrics(key)
            all[key] = made
            return made
        }
    }

    /// The `code` label: clients choose close codes, so only RFC 6455's own (1000–1015) are kept
    /// as they are; the ranges applications use are one series each, anything else `other`
    /// (a series per code a client invents would grow the metrics without bound).
    static func codeLabel(_ code: UInt16) -> String {
        switch code {
        case 1000...1015: return String(code)
        case 3000...3999: return "3xxx"
        case 4000...4999: return "4xxx"
        default: return "other"
        }
    }

    func closed(code: UInt16, by initiator: String) {
        let label = Self.codeLabel(code)
        let key = "\(label) \(initiator)"
        let counter = self.closes.withLockedValue { closes in
            if let existing = closes[key] { return existing }
            let made = Counter(label: "wsgate_session_closes_total", dimensions: [("route", self.route), ("code", label), ("closed_by", initiator)])
            closes[key] = made
            return made
        }
        counter.increment()
    }

    /// `reason`: a ``GatewayCloseReason``, or `client`, `backend`, `admin`, `network`, `protocol_error`.
    func ended(reason: String) {
        let counter = self.endings.withLockedValue { endings in
            if let existing = endings[reason] { return existing }
            let made = Counter(label: "wsgate_sessions_closed_total", dimensions: [("route", self.route), ("reason", reason)])
            endings[reason] = made
            return made
        }
        counter.increment()
    }
}

enum GatewayMetrics {
    /// `tcp`, `unix` or `websocket`: the backend kind label.
    static func kind(_ backend: BackendURL) -> String {
        switch backend {
        case .tcp: return "tcp"
        case .unix: return "unix"
        case .webSocket: return "websocket"
        }
    }

    static func backendConnected(route: String, backend: BackendURL, protocol clientProtocol: String, after elapsed: TimeAmount) {
        SessionMetrics.forSession(route: route, backend: backend, protocol: clientProtocol).connect.recordNanoseconds(elapsed.nanoseconds)
    }

    /// A backend that could not be reached: also a refused handshake (`reason="backend"`).
    static func backendFailed(route: String, backend: BackendURL, status: Int) {
        RefusalMetrics.count("backend", status: status)
        Counter(label: "wsgate_backend_connect_failures_total", dimensions: [("route", route), ("backend", self.kind(backend)), ("status", String(status))]).increment()
    }

    /// 1 while the gateway is shutting down (draining sessions), 0 otherwise.
    static func draining(_ value: Bool) {
        Gauge(label: "wsgate_draining").record(value ? 1 : 0)
    }
}
