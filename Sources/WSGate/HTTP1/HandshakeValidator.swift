import NIOHTTP1

/// A request the gateway will not upgrade: the status the client gets and the reason the log gets.
public struct HTTPRefusal: Equatable, Sendable {
    public var status: HTTPResponseStatus
    public var headers: HTTPHeaders
    public var reason: String
    /// Whether the connection must close after the answer (failed handshakes do; plain requests needn't).
    public var closesConnection: Bool

    public init(_ status: HTTPResponseStatus, _ reason: String, headers: HTTPHeaders = [:], closesConnection: Bool) {
        self.status = status
        self.reason = reason
        self.headers = headers
        self.closesConnection = closesConnection
    }
}

/// A valid WebSocket opening handshake, routed.
public struct UpgradeRequest: Sendable {
    public var route: RouteTable.Route
    public var head: HTTPRequestHead
    public var key: String
    /// Subprotocols the client offered that the route allows, in the client's order of preference.
    public var subprotocols: [String]
    /// Whether the client offered any subprotocol at all (before the route's filter).
    public var clientOfferedSubprotocols: Bool
    /// Whether the client's connection is TLS (for `X-Forwarded-Proto` and `Forwarded`).
    public var clientUsesTLS = false
    /// permessage-deflate as agreed with the client (its offers against the route's settings).
    public var compression: DeflateParameters?
}

/// What to do with a request head. Pure, so every rule of RFC 6455 §4.2.1 is unit-tested.
public enum HandshakeDecision: Sendable {
    /// `GET /healthz`: the process is alive.
    case health
    case refuse(HTTPRefusal)
    case upgrade(UpgradeRequest)
}

public enum HandshakeValidator {
    public static let healthPath = "/healthz"

    public static func decide(_ head: HTTPRequestHead, routes: RouteTable) -> HandshakeDecision {
        let headers = head.headers
        let path = RouteTable.path(ofTarget: head.uri)
        let asksForWebSocket = HTTPTokens.contains(headers, "upgrade", token: "websocket")

        if path == Self.healthPath && !asksForWebSocket && (head.method == .GET || head.method == .HEAD) {
            return .health
        }
        guard let route = routes.route(forTarget: head.uri) else {
            return .refuse(HTTPRefusal(.notFound, "no route for \(path)", closesConnection: asksForWebSocket))
        }
        guard asksForWebSocket else {
            var extra = HTTPHeaders()
            extra.add(name: "Upgrade", value: "websocket")
            extra.add(name: "Connection", value: "Upgrade")
            extra.add(name: "Sec-WebSocket-Version", value: "13")
            return .refuse(HTTPRefusal(.upgradeRequired, "request for a WebSocket route without 'Upgrade: websocket'", headers: extra, closesConnection: false))
        }
        guard head.method == .GET else {
            return .refuse(HTTPRefusal(.methodNotAllowed, "WebSocket handshake with method \(head.method.rawValue)", headers: ["Allow": "GET"], closesConnection: true))
        }
        guard head.version.major > 1 || (head.version.major == 1 && head.version.minor >= 1) else {
            return .refuse(HTTPRefusal(.badRequest, "WebSocket handshake over HTTP/\(head.version.major).\(head.version.minor)", closesConnection: true))
        }
        let hosts = headers["host"]
        guard hosts.count == 1, !hosts[0].isEmpty else {
            return .refuse(HTTPRefusal(.badRequest, hosts.isEmpty ? "WebSocket handshake without Host" : "WebSocket handshake with \(hosts.count) Host headers", closesConnection: true))
        }
        guard HTTPTokens.contains(headers, "connection", token: "upgrade") else {
            return .refuse(HTTPRefusal(.badRequest, "WebSocket handshake without 'Connection: upgrade'", closesConnection: true))
        }
        let versions = HTTPTokens.list(headers, "sec-websocket-version")
        guard versions == ["13"] else {
            let shown = versions.isEmpty ? "missing" : versions.joined(separator: ", ")
            return .refuse(HTTPRefusal(.upgradeRequired, "unsupported Sec-WebSocket-Version (\(shown))", headers: ["Sec-WebSocket-Version": "13"], closesConnection: true))
        }
        let keys = headers["sec-websocket-key"]
        guard keys.count == 1, WebSocketAccept.isValidKey(keys[0].trimmingWhitespace()) else {
            let why = keys.isEmpty ? "missing Sec-WebSocket-Key" : keys.count > 1 ? "several Sec-WebSocket-Key headers" : "Sec-WebSocket-Key is not 16 bytes in base64"
            return .refuse(HTTPRefusal(.badRequest, why, closesConnection: true))
        }
        let offered = HTTPTokens.list(headers, "sec-websocket-protocol")
        if let bad = offered.first(where: { !HTTPTokens.isToken($0) }) {
            return .refuse(HTTPRefusal(.badRequest, "invalid subprotocol name '\(bad)'", closesConnection: true))
        }
        var subprotocols = offered.map(String.init)
        if let allowed = route.configuration.subprotocols {
            subprotocols = subprotocols.filter { allowed.contains($0) }
            if !offered.isEmpty && subprotocols.isEmpty {
                return .refuse(HTTPRefusal(.badRequest, "none of the offered subprotocols (\(offered.joined(separator: ", "))) is allowed on route \(route.configuration.path)", closesConnection: true))
            }
        }
        var request = UpgradeRequest(route: route, head: head, key: keys[0].trimmingWhitespace(), subprotocols: subprotocols, clientOfferedSubprotocols: !offered.isEmpty)
        request.compression = DeflateNegotiation.negotiate(head.headers["sec-websocket-extensions"], settings: route.configuration.compression)
        return .upgrade(request)
    }
}
