import NIOCore
import NIOHTTP1

/// A request the gateway will not upgrade: the status the client gets and the reason the log gets.
public struct HTTPRefusal: Error, Equatable, Sendable {
    public var status: HTTPResponseStatus
    public var headers: HTTPHeaders
    public var reason: String
    /// Whether the connection must close after the answer (failed handshakes do; plain requests needn't).
    public var closesConnection: Bool
    /// The `reason` label of the refusal metric: a fixed word, unlike the log's `reason`.
    public var label: String
    /// The answer's body when it is not the gateway's own (an auth service's 401/403, passed on).
    public var bodyOverride: String?

    public init(_ status: HTTPResponseStatus, _ reason: String, headers: HTTPHeaders = [:], closesConnection: Bool, label: String = "bad_request") {
        self.status = status
        self.reason = reason
        self.headers = headers
        self.closesConnection = closesConnection
        self.label = label
    }

    /// The headers as HTTP/2 fields (lowercase names).
    var http2Headers: [(String, String)] {
        self.headers.map { ($0.name.lowercased(), $0.value) }
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
    /// The credential the route's `auth` looks for, already removed from `head`.
    public var credential: Credential?
    /// The token naming a dynamic target (`targets`), already removed from `head`.
    public var targetToken: String?
    /// The held or shared session the client names (`resume`, `share`), already removed from `head`.
    public var hub: HubRequest?
    /// Who the credential belongs to, once checked (for the session's log line).
    public var identity: String?
    /// The authenticated user's own name (htpasswd user, JWT `sub`, certificate CN, auth service's
    /// user), once admitted: PROXY v2 carries it to TCP services.
    var user: String?
    /// Who may resume the session, or whose clients share one (`share.key: user`), once admitted: the
    /// user, else the token file entry that admitted the client; nil on routes without credentials.
    var sessionOwner: String?
    /// Headers naming the client for a WebSocket backend (`backend_identity`), once admitted.
    var identityHeaders: [(name: String, value: String)] = []
    /// How long the credential holds and the places it took in the session limits, once admitted:
    /// the session takes them over.
    var credentials = SessionCredentials()
    /// Sessions this one replaces (`on_limit: replace_oldest`), closed once it is admitted.
    var replacing: [UInt64] = []
    /// Where the session goes: the route's backend, or the dynamic target chosen for it.
    public var backend: BackendURL
    /// The TCP peer (or the client a trusted PROXY header named).
    public var peerAddress: SocketAddress?
    /// `peerAddress` is one of `server.trusted_proxies`: its forwarding headers are kept.
    public var peerIsTrustedProxy = false
    /// The client: `peerAddress`, or the client a trusted proxy's `X-Forwarded-For` names.
    public var clientAddress: SocketAddress?
    /// The gateway address the client connected to (a PROXY header's destination for TCP backends).
    public var localAddress: SocketAddress?
    /// The subject of the client's verified TLS certificate, on mTLS listeners.
    public var clientCertificateSubject: String?
    /// The routing table version `route` came from: its guard and backend TLS context are used
    /// even if a reload swaps the table while this handshake is in flight.
    var routing: Routing?

    init(route: RouteTable.Route, head: HTTPRequestHead, key: String, subprotocols: [String], clientOfferedSubprotocols: Bool) {
        self.route = route
        self.head = head
        self.key = key
        self.subprotocols = subprotocols
        self.clientOfferedSubprotocols = clientOfferedSubprotocols
        self.backend = route.configuration.backend
    }
}

/// What to do with a request head. Pure, so every rule of RFC 6455 §4.2.1 is unit-tested.
public enum HandshakeDecision: Sendable {
    /// `GET /healthz` or `/readyz` (the handler knows whether the gateway is ready).
    case probe(Probe)
    case refuse(HTTPRefusal)
    case upgrade(UpgradeRequest)
    /// A plain GET/HEAD on a route with `static`.
    case serveFile(StaticRequest)
}

public enum HandshakeValidator {
    /// Decides against one routing table version and ties an upgrade to it (see ``Routing``).
    static func decide(_ head: HTTPRequestHead, routing: Routing, secure: Bool) -> HandshakeDecision {
        let decision = self.decide(head, routes: routing.table, secure: secure)
        guard case .upgrade(var request) = decision else { return decision }
        request.routing = routing
        return .upgrade(request)
    }

    public static func decide(_ head: HTTPRequestHead, routes: RouteTable, secure: Bool = false) -> HandshakeDecision {
        let headers = head.headers
        let path = RouteTable.path(ofTarget: head.uri)
        let asksForWebSocket = HTTPTokens.contains(headers, "upgrade", token: "websocket")

        if !asksForWebSocket && (head.method == .GET || head.method == .HEAD), let probe = Probe(path: path) {
            return .probe(probe)
        }
        guard let route = routes.route(forTarget: head.uri, host: headers.first(name: "host")) else {
            return .refuse(HTTPRefusal(.notFound, "no route for \(path)", closesConnection: asksForWebSocket, label: "no_route"))
        }
        guard asksForWebSocket else {
            if let files = route.configuration.staticFiles {
                switch StaticRequest.make(method: head.method, target: head.uri, headers: headers, route: route, settings: files) {
                case .success(let request): return .serveFile(request)
                case .failure(let refusal): return .refuse(refusal)
                }
            }
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
        switch self.upgrade(route: route, head: head, key: keys[0].trimmingWhitespace(), secure: secure) {
        case .success(let request): return .upgrade(request)
        case .failure(let refusal): return .refuse(refusal)
        }
    }

    /// The checks HTTP/1.1 and HTTP/2 handshakes share once the request is a well-formed WebSocket
    /// handshake for `route`: origin, credentials (taken out of the request), subprotocols, compression.
    static func upgrade(route: RouteTable.Route, head: HTTPRequestHead, key: String, secure: Bool) -> Result<UpgradeRequest, HTTPRefusal> {
        let config = route.configuration
        guard config.servesWebSockets else {
            return .failure(HTTPRefusal(.notFound, "route \(config.path) serves files, not WebSockets", closesConnection: true, label: "no_route"))
        }
        if let why = OriginCheck.refusal(policy: config.origins, origin: head.headers.first(name: "origin"), host: head.headers.first(name: "host"), clientUsesTLS: secure) {
            return .failure(HTTPRefusal(.forbidden, why, closesConnection: true, label: "origin"))
        }
        var head = head
        // An auth service sees the client's headers as they came: nothing is taken out for it.
        let extracted = CredentialExtractor.extract(from: &head, auth: config.auth?.extractsCredential == true ? config.auth : nil, targets: config.targets)
        let hub: HubRequest?
        switch HubRequest.extract(from: &head, route: config) {
        case .success(let found): hub = found
        case .failure(let refusal): return .failure(refusal)
        }
        let offered = HTTPTokens.list(head.headers, "sec-websocket-protocol")
        if let bad = offered.first(where: { !HTTPTokens.isToken($0) }) {
            return .failure(HTTPRefusal(.badRequest, "invalid subprotocol name '\(bad)'", closesConnection: true))
        }
        var subprotocols = offered.map(String.init)
        if let allowed = config.subprotocols {
            subprotocols = subprotocols.filter { allowed.contains($0) }
            if !offered.isEmpty && subprotocols.isEmpty {
                return .failure(HTTPRefusal(.badRequest, "none of the offered subprotocols (\(offered.joined(separator: ", "))) is allowed on route \(config.path)", closesConnection: true))
            }
        }
        var request = UpgradeRequest(route: route, head: head, key: key, subprotocols: subprotocols, clientOfferedSubprotocols: !offered.isEmpty)
        request.compression = DeflateNegotiation.negotiate(head.headers["sec-websocket-extensions"], settings: config.compression)
        request.credential = extracted.credential
        request.targetToken = extracted.targetToken
        request.hub = hub
        return .success(request)
    }
}
