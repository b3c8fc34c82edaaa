import NIOHTTP1

/// Why a backend could not be reached before the 101: the status the client gets, and what the log says.
public enum BackendError: Error, CustomStringConvertible {
    case timedOut(after: String)
    case unreachable(String)
    case handshakeRejected(status: HTTPResponseStatus)
    case invalidHandshake(String)
    case closedDuringHandshake

    /// 504 for timeouts, 502 for everything else (RFC 9110 §15.6.3 and §15.6.5).
    public var status: HTTPResponseStatus {
        switch self {
        case .timedOut: return .gatewayTimeout
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
        }
    }
}
