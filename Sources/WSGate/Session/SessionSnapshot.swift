import NIOCore

/// One live session as the admin API lists it, taken on the session's event loop.
struct SessionSnapshot: Sendable {
    var id: UInt64
    var route: String
    var user: String?
    var client: String
    var backend: String
    /// `http/1.1` or `h2`.
    var clientProtocol: String
    /// How long the session has been open (the admin API turns it into a start time).
    var age: TimeAmount
    var bytesIn: Int
    var bytesOut: Int
    var messagesIn: Int
    var messagesOut: Int
    /// Closing already (by either peer or the gateway).
    var closing: Bool
}
