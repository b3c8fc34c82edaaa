import Metrics
import NIOCore

/// wsgate's metrics, through swift-metrics (exported by the `wsgate` command in Prometheus text on
/// the admin listener). Recorded per session and per refusal, never per frame: a session's bytes
/// and messages are added when it ends.
enum GatewayMetrics {
    /// `tcp`, `unix` or `websocket`: the backend kind label.
    static func kind(_ backend: BackendURL) -> String {
        switch backend {
        case .tcp: return "tcp"
        case .unix: return "unix"
        case .webSocket: return "websocket"
        }
    }

    static func sessionStarted(route: String, backend: BackendURL, protocol clientProtocol: String) {
        let dimensions = [("route", route), ("backend", self.kind(backend)), ("protocol", clientProtocol)]
        Counter(label: "wsgate_sessions_total", dimensions: dimensions).increment()
        Meter(label: "wsgate_sessions_active", dimensions: dimensions).increment()
    }

    static func sessionEnded(route: String, backend: BackendURL, protocol clientProtocol: String, closeCode: UInt16, closedBy: String,
                             bytesIn: Int, bytesOut: Int, messagesIn: Int, messagesOut: Int, duration: TimeAmount) {
        let dimensions = [("route", route), ("backend", self.kind(backend)), ("protocol", clientProtocol)]
        Meter(label: "wsgate_sessions_active", dimensions: dimensions).decrement()
        let route = [("route", route)]
        Counter(label: "wsgate_client_bytes_total", dimensions: route + [("direction", "in")]).increment(by: bytesIn)
        Counter(label: "wsgate_client_bytes_total", dimensions: route + [("direction", "out")]).increment(by: bytesOut)
        Counter(label: "wsgate_messages_total", dimensions: route + [("direction", "in")]).increment(by: messagesIn)
        Counter(label: "wsgate_messages_total", dimensions: route + [("direction", "out")]).increment(by: messagesOut)
        Counter(label: "wsgate_session_closes_total", dimensions: route + [("code", String(closeCode)), ("closed_by", closedBy)]).increment()
        Timer(label: "wsgate_session_duration_seconds", dimensions: route, preferredDisplayUnit: .seconds).recordNanoseconds(duration.nanoseconds)
    }

    static func backendConnected(route: String, backend: BackendURL, after elapsed: TimeAmount) {
        Timer(label: "wsgate_backend_connect_seconds", dimensions: [("route", route), ("backend", self.kind(backend))], preferredDisplayUnit: .seconds)
            .recordNanoseconds(elapsed.nanoseconds)
    }

    static func backendFailed(route: String, backend: BackendURL, status: Int) {
        Counter(label: "wsgate_backend_connect_failures_total", dimensions: [("route", route), ("backend", self.kind(backend)), ("status", String(status))]).increment()
    }

    /// 1 while the gateway is shutting down (draining sessions), 0 otherwise.
    static func draining(_ value: Bool) {
        Gauge(label: "wsgate_draining").record(value ? 1 : 0)
    }
}
