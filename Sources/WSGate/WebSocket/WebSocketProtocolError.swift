/// A violation of RFC 6455 by a peer: the close code it will be sent, and the reason the log will show.
public struct WebSocketProtocolError: Error, Equatable, Sendable, CustomStringConvertible {
    public var code: WebSocketCloseCode
    public var reason: String

    public init(_ code: WebSocketCloseCode, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    public var description: String { "\(self.code) \(self.reason)" }
}
