import NIOCore

/// Which browser pages may open a route: the defence against cross-site WebSocket hijacking.
///
/// Browsers always send `Origin` on WebSocket handshakes, and a page cannot forge it; a request
/// without one comes from a non-browser client, which a hijacking page cannot drive, so it is let
/// through (authenticate such clients with `auth`).
public enum OriginPolicy: Sendable, Equatable, CustomStringConvertible {
    /// Any page on any site. Never combine with cookie authentication on a route that reaches a TCP service.
    case any
    /// The `Origin`'s host and port must equal the request's `Host` (`:authority`). The default.
    case sameOrigin
    /// Exact origins (`https://app.example.com`) and wildcard hosts (`*.example.com`, any scheme and
    /// port; `https://*.example.com` to fix the scheme).
    case allowList([String])

    public var description: String {
        switch self {
        case .any: return "any"
        case .sameOrigin: return "same-origin"
        case .allowList(let list): return list.joined(separator: ", ")
        }
    }
}

/// Where a route looks for the client's credential. Browsers cannot set headers on a WebSocket
/// request, so besides `Authorization` a token may come from a cookie, the query or a subprotocol
/// entry. Whatever is used is removed before the request goes on or is logged.
public struct TokenSources: Sendable, Equatable {
    /// `Authorization: Bearer <token>` (and `Basic` for htpasswd routes).
    public var header = true
    /// A cookie of this name; nil ignores cookies.
    public var cookie: String? = "wsgate_token"
    /// A query parameter of this name; nil ignores the query.
    public var queryParameter: String? = "token"
    /// A `Sec-WebSocket-Protocol` entry `<prefix><token>` (e.g. `bearer.eyJ…`); never chosen as the
    /// answer and never sent on. nil ignores subprotocols.
    public var subprotocolPrefix: String? = "bearer."

    public init() {}
}

/// How a route checks who is connecting, before any backend is contacted.
public enum AuthMethod: Sendable, Equatable {
    /// Static bearer tokens, one per line in a file (re-read when it changes).
    case bearerTokens(file: String)
    /// The same, from an environment variable (tokens separated by commas or whitespace).
    case bearerTokensFromEnvironment(variable: String)
    /// HTTP Basic against an htpasswd file (bcrypt `$2y$`, SHA-crypt `$5$`/`$6$`, `{SHA}`).
    case basic(htpasswdFile: String)
    case jwt(JWTSettings)
}

public struct AuthSettings: Sendable, Equatable {
    public var method: AuthMethod
    public var sources = TokenSources()

    public init(method: AuthMethod) {
        self.method = method
    }
}

/// JSON Web Tokens checked with jwt-kit: signature, then `exp`/`nbf` (always, when present),
/// `aud` and `iss` (when configured).
public struct JWTSettings: Sendable, Equatable {
    /// HS256 secret in a file (trailing newline ignored).
    public var hmacSecretFile: String?
    /// PEM public keys (RSA for RS256, P-256 for ES256) or raw 32-byte Ed25519 keys in base64url.
    public var publicKeyFiles: [String] = []
    /// A JWKS document (`{"keys": [...]}`): RSA, EC and OKP keys, chosen by `kid`.
    public var jwksFile: String?
    /// Accepted audiences: the token's `aud` must contain one. nil skips the check.
    public var audiences: [String]?
    /// Required `iss`. nil skips the check.
    public var issuer: String?
    /// Tolerance for `exp` and `nbf` against clock skew.
    public var leeway: TimeAmount = .seconds(30)
    /// Claim listing the route paths a token may open (a string or an array); absent = any route
    /// using this JWT setup.
    public var routesClaim = "routes"
    /// Claim naming the backend of a route with `targets` (`host:port` or a URL).
    public var targetClaim = "target"
    /// `exp` must be present: tokens that never expire are refused.
    public var requireExpiry = true

    public init() {}
}

/// A route whose backend comes from the request (websockify's token plugins), confined to
/// `allowed`: no dynamic target can reach an address that was not configured.
public struct DynamicTargets: Sendable, Equatable {
    public enum TokenLocation: String, Sendable, Equatable {
        /// `?token=abc`.
        case query
        /// The first label of the `Host` (`abc.vnc.example.com`).
        case host
    }

    /// `token: host:port` lines (websockify's format; `ws://`/`wss://` URLs also accepted), re-read on change.
    public var tokenFile: String?
    /// Take the target from the JWT claim named by the route's `auth.jwt.target_claim` instead.
    public var fromJWT = false
    public var tokenLocation: TokenLocation = .query
    /// Query parameter that carries the token.
    public var queryParameter = "token"
    /// `HOST:PORTS`, where HOST is an IP, a CIDR (`10.0.0.0/8`, `[fd00::/8]`), a name or `*.domain`,
    /// and PORTS a port, a range `5900-5999` or `*`.
    public var allowed: [TargetPattern] = []

    public init() {}
}

/// Server-wide connection limits; each refusal is answered, logged and counted.
public struct ConnectionLimits: Sendable, Equatable {
    /// Client connections open at once; nil derives it from the open-file limit (two descriptors a session).
    public var maxConnections: Int?
    /// Client connections open at once from one IP; nil is unlimited.
    public var maxConnectionsPerIP: Int?
    /// WebSocket handshakes (and other requests) per second from one IP, with bursts of twice that; nil is unlimited.
    public var handshakeRatePerIP: Double?
    /// Request headers accepted per request head (431 beyond).
    public var maxHeaderCount = 100

    public init() {}
}
