import NIOCore
import NIOHTTP1

/// `X-Forwarded-For` from trusted proxies only. The chain is read right to left: each trusted
/// proxy appended the address it saw, so the first untrusted one is the client. Anything a client
/// writes itself stays to the left of that and is ignored.
enum ForwardedFor {
    /// The client behind `peer` for this request, or `peer` itself when it is not a trusted proxy.
    static func client(peer: SocketAddress?, headers: HTTPHeaders, trusted: [IPNetwork]) -> SocketAddress? {
        guard trusted.contains(ip: peer?.ipAddress) else { return peer }
        return self.client(behind: peer, headers: headers, trusted: trusted)
    }

    /// The client named by the chain of `peer`, already known to be a trusted proxy.
    static func client(behind peer: SocketAddress?, headers: HTTPHeaders, trusted: [IPNetwork]) -> SocketAddress? {
        let chain = headers["x-forwarded-for"].flatMap { $0.split(separator: ",") }.map { $0.trimmingWhitespace() }
        for entry in chain.reversed() {
            guard let address = Self.address(entry) else { return peer }  // garbage: trust nothing beyond it
            if !trusted.contains(ip: address.ipAddress) { return address }
        }
        return chain.first.flatMap(Self.address) ?? peer
    }

    /// `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1` or `[2001:db8::1]:5678` (port kept when given).
    static func address(_ text: String) -> SocketAddress? {
        if let address = try? SocketAddress(ipAddress: text, port: 0) { return address }
        if text.hasPrefix("["), text.hasSuffix("]") { return try? SocketAddress(ipAddress: String(text.dropFirst().dropLast()), port: 0) }
        guard let (ip, port) = ListenAddress.split(text), let number = Int(port) else { return nil }
        return try? SocketAddress(ipAddress: String(ip), port: number)
    }
}
