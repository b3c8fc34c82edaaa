import NIOCore
import NIOHTTP1

/// The handshake request sent to a WebSocket backend: the client's end-to-end headers, the
/// gateway's own WebSocket headers, and the forwarding headers that tell the backend who asked.
enum BackendRequestHeaders {
    /// Headers never copied from the client: hop-by-hop ones (RFC 9110 §7.6.1), the ones this hop
    /// rewrites, and the forwarding ones (a client's own would let it pose as anyone; only a trusted
    /// proxy's are kept, below). Lowercase; compared without lowercasing each name.
    static let notForwarded: [String] = [
        "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization",
        "te", "trailer", "transfer-encoding", "upgrade", "host", "content-length",
        "sec-websocket-key", "sec-websocket-version", "sec-websocket-protocol", "sec-websocket-extensions",
        "sec-websocket-accept", "x-forwarded-for", "forwarded", "x-forwarded-proto", "x-forwarded-host",
    ]

    static func make(
        client: HTTPRequestHead,
        clientAddress: SocketAddress?,
        keepsForwardingHeaders: Bool = false,
        clientUsesTLS: Bool,
        backendHost: String,
        backendPort: Int,
        key: String,
        subprotocols: [String],
        offersCompression: Bool = false,
        /// Lowercase, as `notForwarded`.
        identityHeaderNames: [String] = [],
        identity: [(name: String, value: String)] = []
    ) -> HTTPHeaders {
        // Connection's tokens name more hop-by-hop fields; lowercased once, as the list is.
        let connectionTokens = HTTPTokens.list(client.headers, "connection").map { $0.lowercased() }
        var headers = Self.handshake(host: backendHost, port: backendPort, key: key, subprotocols: subprotocols, offersCompression: offersCompression)
        let proto = clientUsesTLS ? "https" : "http"
        for (name, value) in client.headers {
            let dropped = { (lowercase: String) in HTTPTokens.equalsIgnoringASCIICase(name, lowercase) }
            if Self.notForwarded.contains(where: dropped) || connectionTokens.contains(where: dropped) { continue }
            // The identity headers are the gateway's to set: a client's own copy never passes.
            if identityHeaderNames.contains(where: dropped) { continue }
            headers.add(name: name, value: value)
        }
        for (name, value) in identity { headers.add(name: name, value: value) }

        // Only a trusted proxy's forwarding headers are kept, with this hop's appended.
        let clientIP = clientAddress?.ipAddress
        var forwardedFor = keepsForwardingHeaders ? client.headers["x-forwarded-for"].joined(separator: ", ") : ""
        if let clientIP {
            forwardedFor = forwardedFor.isEmpty ? clientIP : forwardedFor + ", " + clientIP
        }
        if !forwardedFor.isEmpty { headers.add(name: "X-Forwarded-For", value: forwardedFor) }
        headers.add(name: "X-Forwarded-Proto", value: proto)
        if let host = client.headers.first(name: "host") { headers.add(name: "X-Forwarded-Host", value: host) }

        var forwarded = keepsForwardingHeaders ? client.headers["forwarded"].joined(separator: ", ") : ""
        var element: [String] = []
        if let clientIP { element.append("for=" + (clientIP.utf8.contains(UInt8(ascii: ":")) ? "\"[\(clientIP)]\"" : clientIP)) }
        if let host = client.headers.first(name: "host"), !host.utf8.contains(where: { $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            element.append("host=\"\(host)\"")
        }
        element.append("proto=\(proto)")
        forwarded = forwarded.isEmpty ? element.joined(separator: ";") : forwarded + ", " + element.joined(separator: ";")
        headers.add(name: "Forwarded", value: forwarded)
        return headers
    }

    /// The opening handshake's own headers (RFC 6455 §4.1), for a session's backend leg and for
    /// WebSocket health checks.
    static func handshake(host: String, port: Int, key: String, subprotocols: [String] = [], offersCompression: Bool = false) -> HTTPHeaders {
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: BackendURL.bracketed(host) + (port == 80 || port == 443 ? "" : ":\(port)"))
        headers.add(name: "Upgrade", value: "websocket")
        headers.add(name: "Connection", value: "Upgrade")
        headers.add(name: "Sec-WebSocket-Key", value: key)
        headers.add(name: "Sec-WebSocket-Version", value: "13")
        if !subprotocols.isEmpty {
            headers.add(name: "Sec-WebSocket-Protocol", value: subprotocols.joined(separator: ", "))
        }
        if offersCompression { headers.add(name: "Sec-WebSocket-Extensions", value: DeflateNegotiation.backendOffer) }
        return headers
    }
}
