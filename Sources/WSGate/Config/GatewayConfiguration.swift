import NIOCore

/// Everything wsgate runs from: listeners, the ordered routing table and server-wide limits.
/// Built from a YAML file (``ConfigurationLoader``) or from command-line flags.
public struct GatewayConfiguration: Sendable, Equatable {
    public var listeners: [ListenerConfiguration]
    public var routes: [RouteConfiguration]
    public var server: ServerSettings
    /// The admin listener (`/metrics`, `/healthz`, `/readyz`); nil: none.
    public var admin: AdminConfiguration?

    public init(listeners: [ListenerConfiguration], routes: [RouteConfiguration], server: ServerSettings = ServerSettings()) {
        self.listeners = listeners
        self.routes = routes
        self.server = server
    }
}

/// A separate plain-HTTP listener for operators and probes; keep it on a private address.
public struct AdminConfiguration: Sendable, Equatable {
    public var address: ListenAddress

    public init(address: ListenAddress) {
        self.address = address
    }
}

/// Settings that apply to every connection, before a route is known.
public struct ServerSettings: Sendable, Equatable {
    /// Time a client has to send a complete request head, from connect or from the end of the
    /// previous response on a keep-alive connection. 10 s stops slowloris-style clients holding
    /// sockets while leaving room for slow mobile links.
    public var handshakeTimeout: TimeAmount = .seconds(10)
    /// Largest request head (request line and headers) accepted; larger ones get 431.
    /// 16 KiB holds real browser requests with large cookies, as nginx's default large buffers do.
    public var maxRequestHeadBytes: Int = 16 * 1024
    /// Time a peer has to answer our close frame before the connection is dropped.
    public var closeTimeout: TimeAmount = .seconds(5)
    /// On SIGTERM: how long sessions get to finish their closing handshakes (after 1001 Going
    /// Away) before the rest are cut and the process exits. Keep it under the orchestrator's grace
    /// period (Kubernetes: 30 s by default).
    public var drainTimeout: TimeAmount = .seconds(10)
    /// Event-loop threads; nil means one per CPU core.
    public var threads: Int?
    /// What the gateway's HTTP/2 SETTINGS advertise (ENABLE_CONNECT_PROTOCOL is always on).
    public var http2 = HTTP2Settings()
    /// Connection counts and handshake rates (YAML: top-level `limits`).
    public var limits = ConnectionLimits()
    /// Proxies whose `X-Forwarded-For` is believed (and passed on); from anyone else the
    /// `X-Forwarded-*` and `Forwarded` headers are dropped and the TCP peer is the client.
    public var trustedProxies: [IPNetwork] = []

    public init() {}
}

/// HTTP/2 limits advertised in the server's SETTINGS frame.
public struct HTTP2Settings: Sendable, Equatable {
    /// Streams (WebSocket sessions and requests) one connection may have open at once.
    public var maxConcurrentStreams: UInt32 = 128
    /// Per-stream receive window: the most a client may send on a stream before the gateway has
    /// handed the bytes to its backend. 64 KiB, like the relay's socket high-water mark.
    public var initialWindowSize: UInt32 = 65535
    /// Largest decoded header list accepted.
    public var maxHeaderListSize: UInt32 = 16 * 1024

    public init() {}
}

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
        self.targets != nil || self.backends.contains { if case .webSocket(_, _, _, _, true) = $0 { return true } else { return false } }
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

    public init() {}
}

/// One listening socket: plain (HTTP/1.1 and h2c with prior knowledge) or TLS (ALPN h2, http/1.1).
public struct ListenerConfiguration: Sendable, Equatable, CustomStringConvertible {
    public var address: ListenAddress
    public var tls: ListenerTLS?
    /// Accept a PROXY protocol header (v1 or v2) from these peers, which must send one; other
    /// peers are plain clients. nil: PROXY protocol off.
    public var proxyProtocolFrom: [IPNetwork]?
    /// `SO_REUSEPORT`: several processes (or an old and a new one, during a restart) listen on the
    /// same address and the kernel spreads new connections across them.
    public var reusePort = false

    public init(address: ListenAddress, tls: ListenerTLS? = nil) {
        self.address = address
        self.tls = tls
    }

    public var description: String { "\(self.address)" + (self.tls == nil ? "" : " (tls)") + (self.reusePort ? " (reuse_port)" : "") }
}

/// PEM files for a TLS listener; re-read on SIGHUP.
public struct ListenerTLS: Sendable, Equatable {
    /// The certificate chain, leaf first.
    public var certificateFile: String
    public var keyFile: String
    /// mTLS: client certificates are verified against these CAs (PEM).
    public var clientCAFile: String?
    /// With a client CA: whether a certificate is required (else optional, and routes decide).
    public var clientCertificateRequired = true

    public init(certificateFile: String, keyFile: String) {
        self.certificateFile = certificateFile
        self.keyFile = keyFile
    }
}

/// How the gateway checks a `wss://` backend. System trust roots unless a CA file is given.
public struct BackendTLS: Sendable, Equatable, Hashable {
    /// PEM file of the CA certificates to trust instead of the system's.
    public var caFile: String?
    /// Name sent as SNI and checked against the certificate; defaults to the URL's host (names only:
    /// for an IP address, set it to the name on the backend's certificate).
    public var serverName: String?

    public init(caFile: String? = nil, serverName: String? = nil) {
        self.caFile = caFile
        self.serverName = serverName
    }
}

/// A listening address: `HOST:PORT`, `[IPV6]:PORT` or `:PORT` (all IPv4 interfaces).
public struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public init?(parsing text: String) {
        guard let (hostPart, portPart) = Self.split(text), let port = Int(portPart), (0...65535).contains(port) else { return nil }
        self.host = hostPart.isEmpty ? "0.0.0.0" : String(hostPart)
        self.port = port
    }

    public var description: String {
        self.host.contains(":") ? "[\(self.host)]:\(self.port)" : "\(self.host):\(self.port)"
    }

    /// What a refusal of `text` says, wherever an address is read (file, flags, environment).
    public static func invalid(_ text: String) -> String {
        "invalid address '\(text)' (use HOST:PORT, [IPV6]:PORT or :PORT)"
    }

    /// `HOST:PORT` or `[IPV6]:PORT` into its two parts (unchecked); nil for a bare IPv6 address.
    static func split(_ text: String) -> (host: Substring, port: Substring)? {
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { return nil }
            return (text[text.index(after: text.startIndex)..<close], rest.dropFirst())
        }
        guard let colon = text.lastIndex(of: ":") else { return nil }
        let host = text[..<colon]
        if host.contains(":") { return nil }  // bare IPv6 needs brackets
        return (host, text[text.index(after: colon)...])
    }
}
