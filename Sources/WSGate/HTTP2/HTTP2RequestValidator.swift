import NIOHTTP1

/// What to do with an HTTP/2 request: the RFC 8441 counterpart of ``HandshakeValidator``, with the
/// same decision, so both fronts hand the shared path the same values. Pure. nghttp2 has already
/// checked the pseudo-headers' presence and form (RFC 9113 §8.3, RFC 8441 §4).
enum HTTP2RequestValidator {
    /// Decides against one routing table version and ties a WebSocket request to it (see ``Routing``).
    static func decide(_ headers: [(name: String, value: String)], routing: Routing, secure: Bool) -> HandshakeDecision {
        let decision = self.decide(headers, routes: routing.table, secure: secure)
        guard case .upgrade(var request) = decision else { return decision }
        request.routing = routing
        return .upgrade(request)
    }

    static func decide(_ headers: [(name: String, value: String)], routes: RouteTable, secure: Bool = false) -> HandshakeDecision {
        var method = "", path = "/", authority: String?, protocolName: String?
        var regular = HTTPHeaders()
        for (name, value) in headers {
            switch name {
            case ":method": method = value
            case ":path": path = value
            case ":authority": authority = value
            case ":protocol": protocolName = value
            case ":scheme": break
            default: regular.add(name: name, value: value)
            }
        }
        let isWebSocket = method == "CONNECT" && protocolName?.lowercased() == "websocket"
        if method == "GET" || method == "HEAD", let probe = Probe(path: RouteTable.path(ofTarget: path)) {
            return .probe(probe)
        }
        guard let route = routes.route(forTarget: path, host: authority ?? regular.first(name: "host")) else {
            return .refuse(HTTPRefusal(.notFound, "no route for \(RouteTable.path(ofTarget: path))", closesConnection: false, label: "no_route"))
        }
        guard isWebSocket else {
            if let files = route.configuration.staticFiles, method != "CONNECT" {
                if let authority { regular.replaceOrAdd(name: "host", value: authority) }
                switch StaticRequest.make(method: HTTPMethod(rawValue: method), target: path, headers: regular, route: route, settings: files) {
                case .success(let request): return .serveFile(request)
                case .failure(let refusal): return .refuse(refusal)
                }
            }
            if method == "CONNECT" {
                return .refuse(HTTPRefusal(.notImplemented, "CONNECT with :protocol \(protocolName ?? "(none)") is not supported", closesConnection: false))
            }
            return .refuse(HTTPRefusal(.upgradeRequired, "request for a WebSocket route that is not an extended CONNECT with :protocol websocket",
                                       headers: ["sec-websocket-version": "13"], closesConnection: false))
        }
        let versions = HTTPTokens.list(regular, "sec-websocket-version")
        guard versions == ["13"] else {
            let shown = versions.isEmpty ? "missing" : versions.joined(separator: ", ")
            return .refuse(HTTPRefusal(.upgradeRequired, "unsupported sec-websocket-version (\(shown))", headers: ["sec-websocket-version": "13"], closesConnection: false))
        }
        // The backend leg is HTTP/1.1 whatever the client spoke: give it the request as HTTP/1.1 sees it.
        if let authority { regular.replaceOrAdd(name: "host", value: authority) }
        let head = HTTPRequestHead(version: HTTPVersion(major: 2, minor: 0), method: .GET, uri: path, headers: regular)
        switch HandshakeValidator.upgrade(route: route, head: head, key: "", secure: secure) {
        case .success(let request):
            return .upgrade(request)
        case .failure(let refusal):
            return .refuse(refusal)
        }
    }
}
