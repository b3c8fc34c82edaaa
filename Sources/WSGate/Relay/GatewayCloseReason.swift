import NIOCore

/// Why the gateway itself ended a session: the close code the client gets, the reason in its close
/// frame, and the `reason` label of `wsgate_sessions_closed_total`.
enum GatewayCloseReason: String, Sendable, CaseIterable {
    case idleTimeout = "idle_timeout"
    case missedPong = "missed_pong"
    case maxSessionDuration = "max_session_duration"
    case credentialsExpired = "credentials_expired"
    case credentialsRevoked = "credentials_revoked"
    case admin
    /// A newer session of the same user or target took its place (`on_limit: replace_oldest`).
    case replaced
    /// An operator drained its backend target (`POST /targets/drain`) and the grace ran out.
    case targetDrained = "target_drained"
    case shutdown

    /// 1008 where the client's right to the session ended, 1001 where the gateway simply stops it.
    var code: WebSocketCloseCode {
        switch self {
        case .credentialsExpired, .credentialsRevoked, .admin, .replaced: return .policyViolation
        case .idleTimeout, .missedPong, .maxSessionDuration, .shutdown, .targetDrained: return .goingAway
        }
    }

    /// The client stopped answering: to a session that can be resumed this is a drop (it may come
    /// back), not an end.
    var meansClientVanished: Bool { self == .missedPong }

    var closeFrameReason: String {
        switch self {
        case .idleTimeout: return "idle timeout"
        case .missedPong: return "no pong"
        case .maxSessionDuration: return "maximum session duration reached"
        case .credentialsExpired: return "credentials expired"
        case .credentialsRevoked: return "credentials revoked"
        case .admin: return "closed by an operator"
        case .replaced: return "replaced by a newer session"
        case .targetDrained: return "backend target drained"
        case .shutdown: return "gateway shutting down"
        }
    }
}
