import NIOCore

/// Who is at the other end of an accepted connection. Made when the connection is accepted;
/// the address changes once, if a trusted proxy names the real client in a PROXY header.
final class ClientConnection {
    /// The client as far as this connection can tell: the TCP peer, or the source a trusted
    /// PROXY protocol header named. (`X-Forwarded-For` is per request: see ``ForwardedFor``.)
    var address: SocketAddress?
    /// The gateway address the client connected to (the PROXY header's destination, if any).
    var localAddress: SocketAddress?
    /// Whether the connection is TLS.
    let secure: Bool
    /// The subject of the client's verified TLS certificate (mTLS listeners), e.g. `CN=alice,O=Ops`.
    var certificateSubject: String?
    /// The connection's place in the connection limits, from accept to close (``ClientSlot``).
    var slot: ClientSlot?
    /// When the first request must be complete (accept + `handshake_timeout`): one deadline for the
    /// PROXY header, TLS, protocol detection and the request head together, so a client cannot get
    /// a fresh timeout at each step.
    let handshakeDeadline: NIODeadline

    init(address: SocketAddress?, localAddress: SocketAddress?, secure: Bool, handshakeDeadline: NIODeadline) {
        self.address = address
        self.localAddress = localAddress
        self.secure = secure
        self.handshakeDeadline = handshakeDeadline
    }

    /// `ip:port`, for logs.
    var loggable: String { self.address?.loggable ?? "?" }
}

extension UpgradeRequest {
    /// Records what the connection knows about the client: TLS, addresses (the real client behind a
    /// trusted proxy's `X-Forwarded-For`), the verified certificate.
    mutating func arrived(over client: ClientConnection, trustedProxies: [IPNetwork]) {
        self.clientUsesTLS = client.secure
        self.peerAddress = client.address
        self.localAddress = client.localAddress
        self.clientCertificateSubject = client.certificateSubject
        self.peerIsTrustedProxy = trustedProxies.contains(ip: client.address?.ipAddress)
        self.clientAddress = self.peerIsTrustedProxy ? ForwardedFor.client(behind: client.address, headers: self.head.headers, trusted: trustedProxies) : client.address
    }
}
