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

/// A held or shared session's service connection as the admin API lists it.
struct HubSnapshot: Sendable {
    var route: String
    /// `resume`, `share` or `resume+share`.
    var kind: String
    var user: String?
    /// `live`, `held` (waiting for a resume) or `ended` (closing).
    var state: String
    var members: Int
    /// The service's output kept now, and the most that may be.
    var bufferedBytes: Int
    var bufferLimit: Int
    var messagesOut: UInt64
    var age: TimeAmount
    /// Held: how long the client has left to resume.
    var expiresIn: TimeAmount?
}
