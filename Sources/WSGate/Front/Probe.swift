import NIOHTTP1

/// The two probes every listener answers (and the admin listener too), so orchestrators can ask
/// any port: `/healthz` (the process answers) and `/readyz` (listening and not draining).
public enum Probe: Sendable, Equatable {
    case health
    case readiness

    /// The probe at `path` (a GET or HEAD of it; the caller checks the method).
    init?(path: Substring) {
        switch path {
        case "/healthz": self = .health
        case "/readyz": self = .readiness
        default: return nil
        }
    }

    /// Status and plain-text body; `ready` is the gateway's readiness, read by the caller.
    func answer(ready: Bool) -> (status: HTTPResponseStatus, body: String) {
        switch self {
        case .health: return (.ok, "ok\n")
        case .readiness: return ready ? (.ok, "ready\n") : (.serviceUnavailable, "not ready\n")
        }
    }
}
