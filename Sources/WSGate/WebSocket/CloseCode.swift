/// Close status codes the gateway sends or relays (RFC 6455 §7.4).
public struct WebSocketCloseCode: Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt16

    public init(_ rawValue: UInt16) { self.rawValue = rawValue }

    public static let normalClosure = WebSocketCloseCode(1000)
    public static let goingAway = WebSocketCloseCode(1001)
    public static let protocolError = WebSocketCloseCode(1002)
    public static let unacceptableData = WebSocketCloseCode(1003)
    /// Never sent on the wire: it stands for "the close frame had no status code".
    public static let noStatusReceived = WebSocketCloseCode(1005)
    /// Never sent on the wire: it stands for "the connection dropped without a close frame".
    public static let abnormalClosure = WebSocketCloseCode(1006)
    public static let invalidPayload = WebSocketCloseCode(1007)
    public static let policyViolation = WebSocketCloseCode(1008)
    public static let messageTooBig = WebSocketCloseCode(1009)
    public static let internalError = WebSocketCloseCode(1011)

    /// Whether a peer may put this code in a close frame (RFC 6455 §7.4.1 and the IANA registry).
    /// 1004, 1005, 1006 and 1015 are reserved; 1000–2999 outside the registry are unassigned;
    /// 3000–4999 are for libraries and applications.
    public var isValidOnTheWire: Bool {
        switch self.rawValue {
        case 1000...1003, 1007...1014: return true
        case 3000...4999: return true
        default: return false
        }
    }

    public var description: String { String(self.rawValue) }
}
