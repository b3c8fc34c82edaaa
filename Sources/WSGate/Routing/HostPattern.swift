/// What a route's `host` matches: one name (`app.example.com`) or every name under a domain
/// (`*.example.com`: `a.example.com`, `a.b.example.com`, not `example.com`). Compared with the
/// request's `Host` (HTTP/1.1) or `:authority` (HTTP/2) without its port, case-insensitively.
public enum HostPattern: Sendable, Hashable, CustomStringConvertible {
    case exact(String)
    /// The suffix with its leading dot: `.example.com`.
    case subdomains(of: String)

    public init?(parsing text: String) {
        let name = text.lowercased()
        if name.hasPrefix("*.") {
            let domain = name.dropFirst(2)
            guard Self.isName(domain) else { return nil }
            self = .subdomains(of: "." + domain)
        } else {
            guard Self.isName(Substring(name)) else { return nil }
            self = .exact(name)
        }
    }

    /// Letters, digits, `-`, `_` and dots between non-empty labels (IPv6 literals in brackets too).
    private static func isName(_ text: Substring) -> Bool {
        if text.hasPrefix("[") && text.hasSuffix("]") && text.count > 2 {
            return text.dropFirst().dropLast().allSatisfy { $0.isHexDigit || $0 == ":" || $0 == "." }
        }
        guard !text.isEmpty, text.utf8.count <= 253 else { return false }
        return text.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            !label.isEmpty && label.allSatisfy { ($0.isASCII && ($0.isLetter || $0.isNumber)) || $0 == "-" || $0 == "_" }
        }
    }

    func matches(_ host: Substring) -> Bool {
        switch self {
        case .exact(let name): return host == name
        case .subdomains(let suffix): return host.utf8.count > suffix.utf8.count && host.hasSuffix(suffix)
        }
    }

    /// The request's host as routes compare it: lowercase, no port, no trailing dot.
    static func normalize(_ authority: String) -> Substring {
        var host = Substring(authority.lowercased())
        if host.hasPrefix("[") {
            if let close = host.firstIndex(of: "]") { host = host[...close] }
        } else if let colon = host.lastIndex(of: ":") {
            host = host[..<colon]
        }
        if host.hasSuffix(".") { host = host.dropLast() }
        return host
    }

    public var description: String {
        switch self {
        case .exact(let name): return name
        case .subdomains(let suffix): return "*" + suffix
        }
    }
}
