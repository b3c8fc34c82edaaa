/// Applies a route's ``OriginPolicy`` to a handshake. Pure.
enum OriginCheck {
    /// nil when allowed, otherwise why not (for the log line).
    static func refusal(policy: OriginPolicy, origin: String?, host: String?, clientUsesTLS: Bool) -> String? {
        guard let origin else { return nil }  // not a browser: nothing to hijack (see OriginPolicy)
        switch policy {
        case .any:
            return nil
        case .sameOrigin:
            guard let parsed = ParsedOrigin(origin), let host, let request = Self.hostAndPort(host, defaultPort: clientUsesTLS ? 443 : 80),
                  parsed.host == request.host, parsed.port == request.port
            else { return "origin \(origin) is not the gateway's own (\(host ?? "no Host")); the route allows same-origin only" }
            return nil
        case .allowList(let patterns):
            let parsed = ParsedOrigin(origin)
            for pattern in patterns where Self.matches(pattern: pattern, origin: origin, parsed: parsed) {
                return nil
            }
            return "origin \(origin) is not in the route's allow-list"
        }
    }

    static func matches(pattern: String, origin: String, parsed: ParsedOrigin?) -> Bool {
        let lowered = pattern.lowercased()
        if let star = lowered.range(of: "*.") {
            guard let parsed else { return false }
            let scheme = lowered[..<star.lowerBound]
            if !scheme.isEmpty && scheme != parsed.scheme + "://" { return false }
            return parsed.host.hasSuffix("." + lowered[star.upperBound...])
        }
        if lowered == "null" { return origin == "null" }
        guard let parsed, let wanted = ParsedOrigin(lowered) else { return false }
        return parsed == wanted
    }

    /// `host[:port]` of a Host header; brackets kept off IPv6 hosts.
    static func hostAndPort(_ text: String, defaultPort: Int) -> (host: String, port: Int)? {
        let lowered = text.lowercased()
        if lowered.hasPrefix("["), lowered.hasSuffix("]") { return (String(lowered.dropFirst().dropLast()), defaultPort) }
        guard lowered.contains(":") else { return (lowered, defaultPort) }
        guard let (host, port) = ListenAddress.split(lowered), let number = Int(port) else { return nil }
        return (String(host), number)
    }
}

/// `scheme://host[:port]` with the default port filled in, lowercased.
struct ParsedOrigin: Equatable {
    var scheme: String
    var host: String
    var port: Int

    init?(_ text: String) {
        let lowered = text.lowercased()
        guard let separator = lowered.range(of: "://") else { return nil }
        let scheme = String(lowered[..<separator.lowerBound])
        let defaultPort: Int
        switch scheme {
        case "http", "ws": defaultPort = 80
        case "https", "wss": defaultPort = 443
        default: return nil
        }
        var authority = lowered[separator.upperBound...]
        if authority.hasSuffix("/") { authority = authority.dropLast() }
        guard !authority.isEmpty, !authority.contains("/"), !authority.contains("@"),
              let (host, port) = OriginCheck.hostAndPort(String(authority), defaultPort: defaultPort), !host.isEmpty
        else { return nil }
        self.scheme = scheme
        self.host = host
        self.port = port
    }
}
