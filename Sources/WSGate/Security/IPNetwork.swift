/// An address block: `10.0.0.0/8`, `fd00::/8`, or a single address.
public struct IPNetwork: Sendable, Equatable, CustomStringConvertible {
    let address: IPAddressBytes
    let prefixLength: Int
    public let description: String

    public init?(parsing text: String) {
        let trimmed = text.hasPrefix("[") && text.hasSuffix("]") ? String(text.dropFirst().dropLast()) : text
        if let slash = trimmed.firstIndex(of: "/") {
            guard let address = IPAddressBytes(String(trimmed[..<slash])),
                  let length = Int(trimmed[trimmed.index(after: slash)...]),
                  (0...(address.bytes.count * 8)).contains(length) else { return nil }
            self.address = address
            self.prefixLength = length
        } else {
            guard let address = IPAddressBytes(trimmed) else { return nil }
            self.address = address
            self.prefixLength = address.bytes.count * 8
        }
        self.description = text
    }

    func contains(_ address: IPAddressBytes) -> Bool {
        address.isIn(self.address, prefixLength: self.prefixLength)
    }

    public func contains(_ text: String) -> Bool {
        IPAddressBytes(text).map(self.contains) ?? false
    }
}

extension Array where Element == IPNetwork {
    func contains(ip text: String?) -> Bool {
        guard !self.isEmpty, let text, let address = IPAddressBytes(text) else { return false }
        return self.contains { $0.contains(address) }
    }
}
