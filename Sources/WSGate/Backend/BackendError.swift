import NIOHTTP1

/// Why a backend could not be reached before the 101: the status the client gets, and what the log says.
public enum BackendError: Error, CustomStringConvertible {
    case timedOut(after: String)
    case unreachable(String)
    case handshakeRejected(status: HTTPResponseStatus)
    case invalidHandshake(String)
    case closedDuringHandshake
    /// Every target a pool session tried failed (or the pool's connect deadline ran out).
    case noTargetLeft(tried: [(target: BackendURL, error: BackendError)], deadlineReached: Bool)
    /// An operator is draining the target (every target, for a pool): nothing new goes there.
    case draining(String)

    /// 504 for timeouts, 502 for everything else (RFC 9110 §15.6.3 and §15.6.5).
    public var status: HTTPResponseStatus {
        switch self {
        case .timedOut: return .gatewayTimeout
        case .draining: return .serviceUnavailable
        case .noTargetLeft(let tried, let deadlineReached):
            if deadlineReached { return .gatewayTimeout }
            return tried.allSatisfy { if case .timedOut = $0.error { return true } else { return false } } ? .gatewayTimeout : .badGateway
        default: return .badGateway
        }
    }

    public var description: String {
        switch self {
        case .timedOut(let after): return "backend did not answer within \(after)"
        case .unreachable(let why): return "backend unreachable: \(why)"
        case .handshakeRejected(let status): return "backend refused the WebSocket handshake with \(status.code) \(status.reasonPhrase)"
        case .invalidHandshake(let why): return "backend handshake invalid: \(why)"
        case .closedDuringHandshake: return "backend closed the connection during the handshake"
        case .draining(let target): return "\(target) is being drained"
        case .noTargetLeft(let tried, let deadlineReached):
            let attempts = tried.map { "\($0.target): \($0.error)" }.joined(separator: "; ")
            return (deadlineReached ? "pool connect deadline reached after \(tried.count) attempts" : "all \(tried.count) targets tried failed") + (attempts.isEmpty ? "" : " (\(attempts))")
        }
    }

    /// Whether another target might do better: connection-level failures and 5xx answers. A 4xx
    /// is the application's answer and would be the same everywhere.
    var isTargetFailure: Bool {
        switch self {
        case .timedOut, .unreachable, .invalidHandshake, .closedDuringHandshake, .noTargetLeft: return true
        case .handshakeRejected(let status): return status.code >= 500
        case .draining: return false
        }
    }
}
