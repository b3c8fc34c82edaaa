/// Where a route sends its sessions.
public enum BackendURL: Sendable, Equatable, CustomStringConvertible {
    /// `tcp://host:port`: WebSocket messages become bytes and bytes become messages.
    case tcp(host: String, port: Int)
    /// `unix:/path/to/socket`: the same over a Unix domain socket.
    case unix(path: String)
    /// `ws://host[:port][/path][?query]` (or `wss://` with `tls`): frames relayed to a WebSocket server.
    case webSocket(host: String, port: Int, path: String?, query: String?, tls: Bool = false)

    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case unsupportedScheme(String)
        case missingHost
        case missingPort
        case invalidPort(String)
        case missingPath

        public var description: String {
            switch self {
            case .unsupportedScheme(let s): return "unsupported backend scheme '\(s)' (use tcp://, unix:, ws://, wss://)"
            case .missingHost: return "backend URL has no host"
            case .missingPort: return "tcp:// backend URL needs a port (tcp://host:port)"
            case .invalidPort(let p): return "invalid port '\(p)'"
            case .missingPath: return "unix: backend URL needs a socket path (unix:/path/to/socket)"
            }
        }
    }

    /// The placeholder backend of a route with `targets`: never connected to, since every session
    /// gets its own target (or is refused).
    public static let dynamic = BackendURL.tcp(host: "dynamic.invalid", port: 1)

    /// The placeholder backend of a route that only serves files: never connected to.
    public static let none = BackendURL.tcp(host: "no-backend.invalid", port: 1)

    public init(parsing text: String) throws(ParseError) {
        if text.hasPrefix("unix:") {
            var path = String(text.dropFirst("unix:".count))
            if path.hasPrefix("//") { path.removeFirst(2) }  // also accept unix:///path
            guard !path.isEmpty else { throw .missingPath }
            self = .unix(path: path)
            return
        }
        guard let schemeEnd = text.range(of: "://") else { throw .unsupportedScheme(text) }
        let scheme = text[..<schemeEnd.lowerBound].lowercased()
        let rest = text[schemeEnd.upperBound...]
        switch scheme {
        case "tcp":
            let (host, port) = try Self.hostPort(rest.prefix { $0 != "/" }, defaultPort: nil)
            self = .tcp(host: host, port: port)
        case "ws", "wss":
            let tls = scheme == "wss"
            let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" } ?? rest.endIndex
            let (host, port) = try Self.hostPort(rest[..<authorityEnd], defaultPort: tls ? 443 : 80)
            var path: String?
            var query: String?
            let target = rest[authorityEnd...]
            if let questionMark = target.firstIndex(of: "?") {
                query = String(target[target.index(after: questionMark)...])
                path = target[..<questionMark].isEmpty ? nil : String(target[..<questionMark])
            } else if !target.isEmpty {
                path = String(target)
            }
            self = .webSocket(host: host, port: port, path: path, query: query, tls: tls)
        default:
            throw .unsupportedScheme(String(scheme))
        }
    }

    private static func hostPort(_ authority: Substring, defaultPort: Int?) throws(ParseError) -> (String, Int) {
        var host: Substring
        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { throw .missingHost }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let rest = authority[authority.index(after: close)...]
            if rest.hasPrefix(":") { portText = rest.dropFirst() }
        } else if let colon = authority.lastIndex(of: ":") {
            host = authority[..<colon]
            portText = authority[authority.index(after: colon)...]
        } else {
            host = authority
        }
        guard !host.isEmpty else { throw .missingHost }
        let port: Int
        if let portText {
            guard let value = Int(portText), (1...65535).contains(value) else { throw .invalidPort(String(portText)) }
            port = value
        } else if let defaultPort {
            port = defaultPort
        } else {
            throw .missingPort
        }
        return (String(host), port)
    }

    /// tcp:// and unix: carry bytes; ws:// and wss:// carry frames.
    public var isByteStream: Bool {
        if case .webSocket = self { return false }
        return true
    }

    var isWebSocket: Bool { !self.isByteStream }

    /// A `wss://` target: it needs a backend TLS context.
    var isSecureWebSocket: Bool {
        if case .webSocket(_, _, _, _, true) = self { return true }
        return false
    }

    /// Short name for logs and metrics.
    public var kind: String {
        switch self {
        case .tcp: return "tcp"
        case .unix: return "unix"
        case .webSocket(_, _, _, _, let tls): return tls ? "wss" : "ws"
        }
    }

    public var description: String {
        switch self {
        case .tcp(let host, let port): return "tcp://\(Self.bracketed(host)):\(port)"
        case .unix(let path): return "unix:\(path)"
        case .webSocket(let host, let port, let path, let query, let tls):
            return "\(tls ? "wss" : "ws")://\(Self.bracketed(host)):\(port)\(path ?? "")\(query.map { "?\($0)" } ?? "")"
        }
    }

    static func bracketed(_ host: String) -> String { host.contains(":") ? "[\(host)]" : host }
}
