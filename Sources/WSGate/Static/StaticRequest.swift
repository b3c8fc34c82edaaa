import NIOHTTP1

/// A plain request to a route with `static`: checked here (method, path), answered by
/// ``StaticFileLookup`` on the thread pool.
public struct StaticRequest: Sendable {
    var route: RouteTable.Route
    var lookup: StaticFileLookup.Request
    var isHead: Bool

    /// The request, or the refusal it gets (405 for other methods, 400 for a malformed or
    /// traversing path, 404 for hidden names).
    static func make(method: HTTPMethod, target: String, headers: HTTPHeaders, route: RouteTable.Route, settings: StaticSettings) -> Result<StaticRequest, HTTPRefusal> {
        guard method == .GET || method == .HEAD else {
            return .failure(HTTPRefusal(.methodNotAllowed, "\(method.rawValue) on a static route", headers: ["Allow": "GET, HEAD"], closesConnection: false, label: "static_method"))
        }
        let path = RouteTable.path(ofTarget: target)
        let prefix = route.configuration.match == .exact ? String(path) : route.configuration.path
        switch StaticPath.segments(of: path, below: prefix) {
        case .failure(.malformed(let why)):
            return .failure(HTTPRefusal(.badRequest, "static path refused: \(why)", closesConnection: false, label: "static_path"))
        case .failure(.hidden):
            return .failure(HTTPRefusal(.notFound, "static path refused: hidden name in \(path)", closesConnection: false, label: "static_hidden"))
        case .success(let (segments, isDirectory)):
            // An exact route serves its root's index at its one path: a redirect would leave the route.
            let exact = route.configuration.match == .exact
            let lookup = StaticFileLookup.Request(settings: settings, segments: segments, isDirectory: isDirectory || exact, path: String(path),
                                                  ifNoneMatch: headers.first(name: "if-none-match"), ifModifiedSince: headers.first(name: "if-modified-since"))
            return .success(StaticRequest(route: route, lookup: lookup, isHead: method == .HEAD))
        }
    }
}
