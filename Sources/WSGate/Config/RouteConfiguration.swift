import NIOCore
import Yams

/// How a route's path is compared with the request path.
public enum PathMatch: String, Sendable, Equatable {
    /// The route path is a prefix of the request path on a segment boundary (`/vnc` matches `/vnc`,
    /// `/vnc/`, `/vnc/a` but not `/vncx`); the longest matching prefix wins.
    case prefix
    /// The request path (without query) must equal the route path.
    case exact
}

/// What a TCP backend's bytes become when sent to the client.
public enum TCPMessageType: String, Sendable, Equatable {
    case binary
    /// Text messages, for services that speak UTF-8; chunks that are not valid UTF-8 go as binary.
    case text
}

public struct RouteConfiguration: Sendable, Equatable {
    /// Only requests for this host (`Host` / `:authority`); nil: any host.
    public var host: HostPattern?
    public var path: String
    public var match: PathMatch
    /// The route's targets: one for `backend:`, several for a pool (`backends:`), all of one
    /// family (tcp/unix byte streams, or ws/wss).
    public var backends: [BackendURL]
    /// How a pool picks among `backends`, and their health checks.
    public var pool = PoolSettings()
    /// Files for plain GET/HEAD requests (`static:`); nil: those get 426.
    public var staticFiles: StaticSettings?
    /// Each session's messages to a file (`record:`); nil: not recorded.
    public var record: RecordSettings?
    /// tcp/unix only: a client that drops without a close frame may resume its session (`resume:`).
    public var resume: ResumeSettings?
    /// tcp/unix only: clients with the same share key join one service connection (`share:`).
    public var share: ShareSettings?
    /// false for a route with `static` and no backend: its `backends` is a placeholder and a
    /// WebSocket handshake gets 404.
    public var servesWebSockets = true
    /// Subprotocols a client may negotiate on this route; nil allows whatever the backend accepts
    /// (for TCP backends: websockify's `binary`).
    public var subprotocols: [String]?
    public var messageType: TCPMessageType
    /// TCP/unix only: how the service's stream is cut into messages (`framing`).
    public var framing = TCPFraming.raw
    /// TCP/unix with `message_type: text`: service bytes that are not UTF-8 (`invalid_utf8`).
    public var invalidUTF8 = InvalidUTF8Policy.binary
    /// Who the client is, in headers to a WebSocket backend; nil: nothing is added (and the client's
    /// own headers of those names pass as any other).
    public var backendIdentity: BackendIdentity?
    public var limits: RouteLimits
    /// For `wss://` backends.
    public var backendTLS: BackendTLS
    /// permessage-deflate with clients.
    public var compression = CompressionSettings()
    /// Send a PROXY protocol header to a TCP backend first, so the service sees the real client.
    public var backendProxyProtocol: ProxyProtocol.Version?
    /// Offer permessage-deflate to the WebSocket backend too (its own negotiation; the backend may
    /// decline). Uses `compression`'s level, window and min_size for what the gateway sends it.
    public var backendCompression = false
    /// Which pages may open the route (checked on `Origin`).
    public var origins = OriginPolicy.sameOrigin
    /// Credentials required before the backend is contacted; nil = none.
    public var auth: AuthSettings?
    /// The backend comes from the request, within `allowed`; `backend` is then only a placeholder.
    public var targets: DynamicTargets?
    /// mTLS: only clients whose verified certificate subject matches one of these (`CN=alice`,
    /// `O=Ops`, `CN=ops-*`, or a whole subject `CN=alice,O=Ops`) may open the route. nil: no check.
    public var clientSubjects: [String]?

    public init(
        path: String,
        match: PathMatch = .prefix,
        backend: BackendURL,
        subprotocols: [String]? = nil,
        messageType: TCPMessageType = .binary,
        limits: RouteLimits = RouteLimits()
    ) {
        self.path = path
        self.match = match
        self.backends = [backend]
        self.subprotocols = subprotocols
        self.messageType = messageType
        self.limits = limits
        self.backendTLS = BackendTLS()
    }

    /// The first (for a single-backend route, the only) target; it decides the route's family.
    public var backend: BackendURL {
        get { self.backends[0] }
        set { self.backends = [newValue] }
    }

    /// Any `wss://` target: the route needs a backend TLS context.
    var usesBackendTLS: Bool {
        self.targets != nil || self.backends.contains(where: \.isSecureWebSocket)
    }
}

public struct RouteLimits: Sendable, Equatable {
    /// Largest message accepted in either direction (1009 beyond it). Messages are streamed, so this
    /// bounds what a backend must accept, not gateway memory; 64 MiB leaves room for big browser uploads.
    public var maxMessageBytes: Int = 64 * 1024 * 1024
    /// A session with no frame in either direction for this long is closed with 1001; nil disables it.
    /// One hour: long enough for quiet terminal or VNC sessions, short enough to reap dead ones.
    public var idleTimeout: TimeAmount? = .hours(1)
    /// Time to connect to the backend (and finish its WebSocket handshake) before answering 504.
    public var connectTimeout: TimeAmount = .seconds(5)
    /// A client not heard from for this long is pinged; one that stays silent for as long again is
    /// closed (1001) with its backend. Detects clients that vanished without a FIN (NAT timeouts,
    /// sleeping laptops) in about twice this, instead of after the idle timeout. nil disables it.
    public var pingInterval: TimeAmount? = .seconds(30)
    /// Largest single frame accepted from either peer (1009 beyond it), checked on the frame header
    /// before any payload is read. nil: only `maxMessageBytes` applies.
    public var maxFrameBytes: Int?
    /// A session is closed (1001) this long after it opened, whatever it is doing; nil: no limit.
    public var maxSessionDuration: TimeAmount?
    /// Sessions one user may hold on the route at once (needs `auth` or `client_subjects`); nil: no limit.
    public var maxSessionsPerUser: Int?
    /// Sessions one target (the route's backend, or a dynamic target) may have at once; nil: no limit.
    public var maxSessionsPerTarget: Int?
    /// What a handshake past either limit gets.
    public var onLimit: SessionLimitPolicy = .reject
    /// What one client may send: messages, and payload bytes (as sent, compressed or not), per
    /// second; nil: no limit. Applied by pausing the client's reads (``SessionRateLimit``).
    public var messagesPerSecond: Int?
    public var bytesPerSecond: Int?
    /// Sessions of the route held for a resume at once; a client dropping beyond it ends its session.
    public var maxHeldSessions = 1000

    var rates: SessionRateLimit.Rates {
        SessionRateLimit.Rates(messagesPerSecond: self.messagesPerSecond, bytesPerSecond: self.bytesPerSecond)
    }

    public init() {}
}

// MARK: YAML keys

extension RouteConfiguration: ConfigurationSection {
    static var keys: [ConfigurationKey<Self>] {
        let tcpOnly = "only applies to tcp:// and unix: backends"
        return [
            .value("path", \.path, ConfigurationValue<String>.string
                .checked("must start with '/'") { $0.hasPrefix("/") }
                .checked("must not contain a query or fragment") { !$0.contains("?") && !$0.contains("#") }, shown: false).required(),
            .value("match", \.match, .choice("'prefix' or 'exact'"), shown: false),
            .custom("backend") { route, reader, node, key throws(ConfigurationError) in route.backends = [try ConfigurationValue.backendURL.read(reader, node, key)] },
            .section("backend_tls", \.backendTLS).only(when: \.backend.isSecureWebSocket, "only applies to wss:// backends"),
            .custom("subprotocols", read: { route, reader, node, key throws(ConfigurationError) in
                route.subprotocols = try ConfigurationValue.list(.parsed({ HTTPTokens.isToken($0) ? $0 : nil }, invalid: { "'\($0)' is not a valid subprotocol token" }, show: { $0 }))
                    .read(reader, node, key)
            }, show: { route in
                // Without a list a byte-stream route answers the client's own offer (BackendConnector).
                let rule = route.backend.isByteStream ? "the client's first offer (binary if offered)" : "what the backend chooses"
                return ["subprotocols=\(route.subprotocols?.joined(separator: ",") ?? rule)"]
            }),
            .value("message_type", \.messageType, .choice("'binary' or 'text'")).only(when: { !$0.backend.isWebSocket }, tcpOnly),
            .group("limits", [
                .value("max_message_bytes", \.limits.maxMessageBytes, .size()),
                .optional("max_frame_bytes", \.limits.maxFrameBytes, .size(), unset: "max_message_bytes"),
                .value("idle_timeout", \.limits.idleTimeout, .durationOrOff),
                .value("connect_timeout", \.limits.connectTimeout, .positiveDuration),
                .value("ping_interval", \.limits.pingInterval, .durationOrOff),
                .value("max_session_duration", \.limits.maxSessionDuration, .durationOrOff),
                .optional("max_sessions_per_user", \.limits.maxSessionsPerUser, .integer(in: 1...1_000_000), unset: "unlimited"),
                .optional("max_sessions_per_target", \.limits.maxSessionsPerTarget, .integer(in: 1...1_000_000), unset: "unlimited"),
                .value("on_limit", \.limits.onLimit, .choice("'reject' or 'replace_oldest'")),
                .optional("messages_per_second", \.limits.messagesPerSecond, .integer(in: 1...10_000_000), unset: "unlimited"),
                .optional("bytes_per_second", \.limits.bytesPerSecond, .size(), unset: "unlimited"),
                .value("max_held_sessions", \.limits.maxHeldSessions, .integer(in: 0...1_000_000)),
                .value("connect_attempts", \.pool.connectAttempts, .integer(in: 1...16)),
                .optional("connect_deadline", \.pool.connectDeadline, .positiveDuration, unset: "2 x connect_timeout"),
            ]),
            .section("compression", \.compression),
            .value("backend_compression", \.backendCompression, .bool).only(when: \.backend.isWebSocket, "only applies to ws:// and wss:// backends"),
            .value("origins", \.origins, .origins),
            .optional("auth", \.auth, .auth, unset: "none"),
            .section("targets", \.targets, shown: false),
            .section("backend_identity", \.backendIdentity)
                .only(when: { $0.backend.isWebSocket || $0.targets != nil }, "only applies to ws:// and wss:// backends"),
            .optional("backend_proxy_protocol", \.backendProxyProtocol, .choice("v1 or v2"))
                .only(when: { !$0.backend.isWebSocket }, "only applies to tcp:// and unix: backends (WebSocket backends get X-Forwarded-For and Forwarded)"),
            .optional("client_subjects", \.clientSubjects, .list(.parsed({ $0.contains("=") ? $0 : nil },
                                                                        invalid: { "expected an attribute such as CN=alice or O=Ops (or a whole subject), got '\($0)'" }, show: { $0 }), separator: ";")),
            .custom("backends") { route, reader, node, key throws(ConfigurationError) in route.backends = try ConfigurationValue.pool.read(reader, node, key) },
            .value("balance", \.pool.balance, .balance, shown: false),
            .section("health_check", \.pool.healthCheck, shown: false),
            .section("passive_health", \.pool.passiveHealth, shown: false),
            .optional("host", \.host, .parsed(HostPattern.init(parsing:), invalid: {
                "expected a host name (app.example.com) or *.domain (*.example.com), without a port, got '\($0)'"
            }, show: { "\($0)" }), shown: false),
            .section("static", \.staticFiles, shown: false),
            .section("record", \.record).only(when: \.servesWebSockets, "a route that only serves files has no sessions to record"),
            .section("resume", \.resume).only(when: { $0.backend.isByteStream && $0.servesWebSockets }, tcpOnly),
            .section("share", \.share).only(when: { $0.backend.isByteStream && $0.servesWebSockets }, tcpOnly),
            .value("framing", \.framing, .framing).only(when: { $0.backend.isByteStream && $0.servesWebSockets }, tcpOnly),
            .value("invalid_utf8", \.invalidUTF8, .choice("'binary' or 'close'")).only(when: { $0.messageType == .text }, "only applies with message_type: text"),
        ]
    }

    static var blank: Self { Self(path: "", backend: .none) }

    /// The targets (`backend`, `backends`, or the request's for `targets`) and the checks across keys.
    static func finish(_ route: inout Self, _ reader: ConfigurationReader, _ node: Node, _ key: String) throws(ConfigurationError) {
        let backend = reader.locations.nodes["\(key).backend"]
        let backends = reader.locations.nodes["\(key).backends"]
        if let backend, backends != nil {
            throw reader.fail(backend, "\(key).backend", "give either backend (one target) or backends (a pool), not both")
        }
        route.servesWebSockets = route.staticFiles == nil || route.targets != nil || backend != nil || backends != nil
        if !route.servesWebSockets {
            route.backends = [.none]
        } else if let targets = route.targets {
            if let given = backend ?? backends {
                throw reader.fail(given, "\(key).backend", "a route with targets takes its backend from the request: remove backend")
            }
            route.backends = [.dynamic]
            if targets.fromJWT {
                switch route.auth?.method {
                case .jwt, .http: break
                default: throw reader.fail(reader.locations.nodes["\(key).targets"], "\(key).targets.from_jwt", "needs auth.jwt or auth.http on the same route")
                }
            }
        } else if backend == nil, backends == nil {
            throw reader.fail(node, "\(key).backend", "missing (or give backends for a pool, or targets for a backend chosen per request)")
        }
        if route.staticFiles != nil, let given = reader.locations.nodes["\(key).auth"] ?? reader.locations.nodes["\(key).client_subjects"] {
            throw reader.fail(given, "\(key).static", "files are served without credentials: give the WebSocket route with auth or client_subjects a path of its own")
        }
        if route.limits.maxSessionsPerUser != nil, route.auth == nil, route.clientSubjects == nil {
            throw reader.fail(at: "\(key).limits.max_sessions_per_user", or: node, "needs auth or client_subjects on the route: without them there is no user to count")
        }
        if route.record != nil, route.resume != nil || route.share != nil {
            throw reader.fail(at: "\(key).record", or: node, "sessions that are held or shared are not recorded: give record to a route without resume or share")
        }
        if route.share?.key == .user, route.auth == nil, route.clientSubjects == nil {
            throw reader.fail(at: "\(key).share.key", or: node, "key: user needs auth or client_subjects on the route: without them there is no user")
        }
        let byteStream = route.backend.isByteStream
        try route.pool.healthCheck?.settle(byteStream: byteStream, reader, "\(key).health_check")
    }
}

extension ConfigurationValue where Value == BackendURL {
    static var backendURL: Self {
        Self(read: { reader, node, key throws(ConfigurationError) in
            let text = try reader.string(node, key)
            do throws(BackendURL.ParseError) {
                return try BackendURL(parsing: text)
            } catch {
                throw reader.fail(node, key, error.description)
            }
        }, show: \.description)
    }
}

extension ConfigurationValue where Value == [BackendURL] {
    /// `backends:` targets, all of one family, none twice.
    static var pool: Self {
        Self(read: { reader, node, key throws(ConfigurationError) in
            var urls: [BackendURL] = []
            for (index, item) in try reader.sequence(node, key).enumerated() {
                let url = try ConfigurationValue<BackendURL>.backendURL.read(reader, item, "\(key)[\(index)]")
                if let first = urls.first, url.isByteStream != first.isByteStream {
                    throw reader.fail(item, "\(key)[\(index)]", "a pool's targets must all be tcp:/unix: or all ws:/wss: (\(first) and \(url) differ)")
                }
                guard !urls.contains(url) else { throw reader.fail(item, "\(key)[\(index)]", "\(url) is listed twice") }
                urls.append(url)
            }
            guard !urls.isEmpty else { throw reader.fail(node, key, "needs at least one target") }
            return urls
        }, show: { $0.map(\.description).joined(separator: ",") })
    }
}
