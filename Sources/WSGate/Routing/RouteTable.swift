/// The routing table. Pure: no I/O, so every matching rule is unit-tested.
///
/// One ordered list decides: routes are tried most specific first, and the first one whose host
/// and path both match wins.
/// 1. Host: an exact `host` before `*.domain` ones (longer domains first), before routes without one.
/// 2. Path: an `exact` path before prefixes, longer prefixes first.
/// 3. Otherwise the order of the file.
/// So a request for a host that has routes of its own still reaches a host-less route when none
/// of its own paths match.
public struct RouteTable: Sendable {
    public struct Route: Sendable {
        /// Position in the configuration, for logs and for "listed first wins".
        public var index: Int
        public var configuration: RouteConfiguration
    }

    /// In configuration order.
    public let routes: [Route]
    /// In the order they are tried.
    public let evaluationOrder: [Route]
    /// Whether any route has a `host` (else the request's host is not even looked at).
    private let hasHostRoutes: Bool

    public init(_ routes: [RouteConfiguration]) {
        self.routes = routes.enumerated().map { Route(index: $0.offset, configuration: $0.element) }
        self.evaluationOrder = self.routes.sorted { a, b in
            let (x, y) = (Self.precedence(a.configuration), Self.precedence(b.configuration))
            return x != y ? x.lexicographicallyPrecedes(y, by: >) : a.index < b.index
        }
        self.hasHostRoutes = routes.contains { $0.host != nil }
    }

    /// Bigger is tried first: (host kind, host length, exact path, path length).
    private static func precedence(_ route: RouteConfiguration) -> [Int] {
        let host: [Int]
        switch route.host {
        case .exact?: host = [2, 0]
        case .subdomains(let suffix)?: host = [1, suffix.utf8.count]
        case nil: host = [0, 0]
        }
        return host + [route.match == .exact ? 1 : 0, route.path.utf8.count]
    }

    /// The route for a request target (path, optionally followed by `?query`) on `host` (the
    /// `Host` header or `:authority`, port and all; nil when the request has none).
    public func route(forTarget target: String, host: String? = nil) -> Route? {
        let path = Self.path(ofTarget: target)
        let requestHost = self.hasHostRoutes ? host.map(HostPattern.normalize) : nil
        for route in self.evaluationOrder {
            let config = route.configuration
            if let pattern = config.host {
                guard let requestHost, pattern.matches(requestHost) else { continue }
            }
            switch config.match {
            case .exact: if path == config.path { return route }
            case .prefix: if Self.isPrefix(config.path, of: path) { return route }
            }
        }
        return nil
    }

    /// Routes no request can reach: an earlier route in the evaluation order has the same host,
    /// match and path. (Given the order, that is the only way one route covers another.)
    public var shadowed: [(route: Route, by: Route)] {
        var seen: [String: Route] = [:]
        var result: [(Route, Route)] = []
        for route in self.evaluationOrder {
            let config = route.configuration
            let key = "\(config.host?.description ?? "") \(config.match.rawValue) \(config.path)"
            if let first = seen[key] { result.append((route, first)) } else { seen[key] = route }
        }
        return result
    }

    /// ``shadowed`` as `wsgate check` prints it and the gateway logs it.
    public var shadowWarnings: [String] {
        self.shadowed.map { "route \($0.route.index) (\($0.route.configuration.path)) is never used: route \($0.by.index) has the same host, match and path and is listed first" }
    }

    /// The path part of a request target (query and fragment removed).
    public static func path(ofTarget target: String) -> Substring {
        let end = target.firstIndex { $0 == "?" || $0 == "#" } ?? target.endIndex
        return target[..<end]
    }

    /// Segment-aware prefix test: `/vnc` is a prefix of `/vnc` and `/vnc/x`, not of `/vncx`.
    static func isPrefix(_ prefix: String, of path: Substring) -> Bool {
        guard path.hasPrefix(prefix) else { return false }
        if prefix.hasSuffix("/") || path.utf8.count == prefix.utf8.count { return true }
        let next = path.utf8[path.utf8.index(path.utf8.startIndex, offsetBy: prefix.utf8.count)]
        return next == UInt8(ascii: "/")
    }

    /// The request target to send to a WebSocket backend: the route prefix is replaced by the
    /// backend URL's path when it has one (as nginx's `proxy_pass` with a URI does), otherwise the
    /// client's target is passed unchanged. Queries from both are kept.
    public static func backendTarget(clientTarget: String, route: RouteConfiguration, backendPath: String?, backendQuery: String?) -> String {
        let path = Self.path(ofTarget: clientTarget)
        var clientQuery: Substring?
        if let questionMark = clientTarget.firstIndex(of: "?") {
            clientQuery = clientTarget[clientTarget.index(after: questionMark)...]
        }
        var newPath: String
        if let backendPath {
            var remainder = path.dropFirst(route.path.count)
            if route.match == .exact { remainder = "" }
            if backendPath.hasSuffix("/") && remainder.hasPrefix("/") { remainder = remainder.dropFirst() }
            if !backendPath.hasSuffix("/") && !remainder.isEmpty && !remainder.hasPrefix("/") {
                newPath = backendPath + "/" + remainder
            } else {
                newPath = backendPath + remainder
            }
        } else {
            newPath = String(path)
        }
        if newPath.isEmpty { newPath = "/" }
        var queries: [String] = []
        if let backendQuery, !backendQuery.isEmpty { queries.append(backendQuery) }
        if let clientQuery, !clientQuery.isEmpty { queries.append(String(clientQuery)) }
        return queries.isEmpty ? newPath : newPath + "?" + queries.joined(separator: "&")
    }
}
