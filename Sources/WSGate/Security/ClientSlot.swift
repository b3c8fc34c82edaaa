import NIOConcurrencyHelpers
import NIOCore

/// One place counted in `max_connections` / `max_connections_per_ip`, given back when its last
/// owner lets go. A client connection owns one from accept to close; a WebSocket session over
/// HTTP/2 takes one of its own for its stream (it holds a backend descriptor as a connection
/// would); a backend connect becomes an owner of its client's slot until the connect completes,
/// because its socket stays open until then whether or not the client is still there. Uncounted,
/// a client that starts connects and leaves at once could hold every descriptor of the process.
final class ClientSlot: Sendable {
    private let limiter: ClientLimiter
    private let address: SocketAddress?
    private let owners = NIOLockedValueBox(1)

    /// A slot for `address`, or why the limits refuse one.
    static func take(_ limiter: ClientLimiter, for address: SocketAddress?) -> Result<ClientSlot, ClientLimiter.Refusal> {
        if let refusal = limiter.open(address) { return .failure(refusal) }
        return .success(ClientSlot(limiter: limiter, address: address))
    }

    private init(limiter: ClientLimiter, address: SocketAddress?) {
        self.limiter = limiter
        self.address = address
    }

    /// One more owner; each calls ``release()`` once.
    func addOwner() {
        self.owners.withLockedValue { $0 += 1 }
    }

    /// An owner lets go; the last one gives the place back to the limits. Extra calls do nothing.
    func release() {
        let last = self.owners.withLockedValue { owners -> Bool in
            guard owners > 0 else { return false }
            owners -= 1
            return owners == 0
        }
        if last { self.limiter.close(self.address) }
    }

    var isReleased: Bool { self.owners.withLockedValue { $0 == 0 } }
}
