#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An IP address as network-order bytes (4 or 16), for CIDR tests. IPv4-mapped IPv6 addresses
/// (`::ffff:10.0.0.1`) become their IPv4 form, so a pattern cannot be sidestepped by spelling.
struct IPAddressBytes: Hashable, Sendable {
    let bytes: [UInt8]

    /// Only the canonical literal forms inet_pton accepts: `127.1` or `0x7f000001` are not addresses
    /// here (a resolver would accept them, which is why names are checked separately).
    init?(_ text: String) {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            self.bytes = withUnsafeBytes(of: &v4) { Array($0) }
            return
        }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, text, &v6) == 1 else { return nil }
        let bytes = withUnsafeBytes(of: &v6) { Array($0) }
        if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xFF && bytes[11] == 0xFF {
            self.bytes = Array(bytes[12..<16])
        } else {
            self.bytes = bytes
        }
    }

    init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    var isV4: Bool { self.bytes.count == 4 }

    /// Whether the first `prefixLength` bits equal `network`'s.
    func isIn(_ network: IPAddressBytes, prefixLength: Int) -> Bool {
        guard network.bytes.count == self.bytes.count else { return false }
        var remaining = prefixLength
        for index in self.bytes.indices where remaining > 0 {
            let bits = min(8, remaining)
            let mask: UInt8 = bits == 8 ? 0xFF : ~(0xFF >> UInt8(bits))
            if self.bytes[index] & mask != network.bytes[index] & mask { return false }
            remaining -= bits
        }
        return true
    }
}
