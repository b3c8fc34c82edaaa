import NIOCore

/// What the shared session path (``WebSocketSessionStart``) needs from a front: an HTTP/1.1
/// connection or an HTTP/2 stream. A front speaks its wire protocol and knows whether its client is
/// still there; admission, limits, the backend connect, logs and metrics are the path's, the same
/// for both. Called on the front's event loop only.
protocol SessionFront: AnyObject {
    /// `http/1.1` or `h2`: the `protocol` of log lines and metrics.
    var protocolName: String { get }
    /// `ip:port` of the client, for logs.
    var clientDescription: String { get }

    /// Whether the client is still there for an answer (connection open, stream not reset).
    var clientIsWaiting: Bool { get }

    /// The place in the connection limits the session counts against, or why there is none: an
    /// HTTP/1.1 session uses its connection's, an HTTP/2 stream takes one of its own (and one
    /// HTTP/2 connection caps the backend connects pending on it). Asked once admission passed.
    func sessionSlot() -> Result<ClientSlot?, HTTPRefusal>

    /// A backend connect started or completed (success or not).
    func backendConnectStarted()
    func backendConnectEnded()

    /// The handshake failed (refused, or the backend could not be opened). Whether the client is
    /// still there to be answered.
    func handshakeFailed() -> Bool
    /// Sends the refusal's status and body and ends the request (HTTP/1.1: and the connection).
    func answer(_ refusal: HTTPRefusal)

    /// The backend is open. Whether the client is still there for the session; if not, the
    /// backend is closed.
    func backendOpened() -> Bool
    /// Sends the success answer (101 or 200) with these WebSocket response fields and gives the
    /// relay's client leg its transport. The path then starts the relay.
    func accept(_ relay: RelayInstaller, fields: WebSocketResponseFields) throws
    /// The relay could not be installed: the client is cut off (HTTP/1.1 closes the connection,
    /// HTTP/2 resets the stream).
    func abort()
}

/// The WebSocket fields of the success answer, the same on both fronts (HTTP/1.1 adds its
/// `Upgrade`/`Connection`/`Sec-WebSocket-Accept`).
struct WebSocketResponseFields {
    var subprotocol: String?
    var extensions: String?

    /// As header fields (HTTP/2 lowercases the names as it sends them).
    var headers: [(String, String)] {
        (self.subprotocol.map { [("Sec-WebSocket-Protocol", $0)] } ?? []) + (self.extensions.map { [("Sec-WebSocket-Extensions", $0)] } ?? [])
    }
}
