/// One entry of a route's `allowed` targets: `HOST:PORTS`.
///
/// HOST is an IP address, a CIDR (`10.0.0.0/8`, `[fd00::/8]`), a DNS name or `*.domain`; PORTS is a
/// port, a range (`5900-5999`) or `*`. IP targets match only address patterns and names only name
/// patterns, so a name cannot slip past a CIDR and an address cannot pose as a name.
public struct TargetPattern: Sendable, Equatable, CustomStringConvertible {
    enum Host: Equatable {
        case network(IPNetwork)
        case name(String)
        /// `*.domain`: any name ending in `.domain` (not `domain` itself).
        case suffix(String)
    }

    let host: Host
    let ports: ClosedRange<Int>
    public let description: String

    public init?(parsing text: String) {
        guard let (hostText, portText) = ListenAddress.split(text), let ports = Self.ports(portText) else { return nil }
        if let network = IPNetwork(parsing: String(hostText)) {
            self.host = .network(network)
        } else if hostText.contains("/") || IPAddressBytes(String(hostText.prefix { $0 != "/" })) != nil {
            return nil  // an address block that does not parse
        } else if hostText.hasPrefix("*.") {
            let domain = hostText.dropFirst(2).lowercased()
            guard Self.isHostName(domain) else { return nil }
            self.host = .suffix(domain)
        } else {
            let name = hostText.lowercased()
            guard Self.isHostName(name) else { return nil }
            self.host = .name(name)
        }
        self.ports = ports
        self.description = text
    }

    private static func ports(_ text: Substring) -> ClosedRange<Int>? {
        if text == "*" { return 1...65535 }
        if let dash = text.firstIndex(of: "-") {
            guard let low = Int(text[..<dash]), let high = Int(text[text.index(after: dash)...]),
                  1 <= low, low <= high, high <= 65535 else { return nil }
            return low...high
        }
        guard let port = Int(text), (1...65535).contains(port) else { return nil }
        return port...port
    }

    /// A DNS name a resolver will not read as a number: letters, digits, `-` and dots, and a last
    /// label that starts with a letter (so `127.1` or `0x7f000001` never count as names).
    static func isHostName<S: StringProtocol>(_ name: S) -> Bool {
        guard !name.isEmpty, name.utf8.count <= 253 else { return false }
        let labels = name.split(separator: ".", omittingEmptySubsequences: false)
        for label in labels {
            guard !label.isEmpty, label.utf8.count <= 63, !label.hasPrefix("-"), !label.hasSuffix("-"),
                  label.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D })
            else { return false }
        }
        guard let first = labels.last?.utf8.first else { return false }
        return (first >= 0x61 && first <= 0x7A) || (first >= 0x41 && first <= 0x5A)
    }

    public func matches(host: String, port: Int) -> Bool {
        guard self.ports.contains(port) else { return false }
        if let address = IPAddressBytes(host) {
            guard case .network(let network) = self.host else { return false }
            return network.contains(address)
        }
        guard Self.isHostName(host) else { return false }
        let name = host.lowercased()
        switch self.host {
        case .network: return false
        case .name(let expected): return name == expected
        case .suffix(let domain): return name.hasSuffix("." + domain)
        }
    }
}
