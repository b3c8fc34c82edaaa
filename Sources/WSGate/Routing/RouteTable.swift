/// The ordered routing table. Pure: no I/O, so every matching rule is unit-tested.
///
/// Rules: an `exact` route matching the request path wins; otherwise the longest matching `prefix`
/// route; equal candidates go to the one listed first.
public struct RouteTable: Sendable {
    public struct Route: Sendable {
        /// Position in the configuration, for logs and for "listed first wins".
        public var index: Int
        public var configuration: RouteConfiguration
    }

    public let routes: [Route]

    public init(_ routes: [RouteConfiguration]) {
        self.routes = routes.enumerated().map { Route(index: $0.offset, configuration: $0.element) }
    }

    /// The route for a request target (path, optionally followed by `?query`).
    public func route(forTarget target: String) -> Route? {
        let path = Self.path(ofTarget: target)
        var best: Route?
        for route in self.routes {
            let config = route.configuration
            switch config.match {
            case .exact:
                if path == config.path { return route }
            case .prefix:
                guard Self.isPrefix(config.path, of: path) else { continue }
                if best == nil || config.path.utf8.count > best!.configuration.path.utf8.count {
                    best = route
                }
            }
        }
        return best
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
