import Foundation
import NIOCore
import Yams

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
    /// An HTTP(S) authorisation service asked once per handshake (nginx `auth_request`, Envoy
    /// `ext_authz`, Traefik ForwardAuth).
    case http(HTTPAuthSettings)
}

/// `auth.http`: the service to ask, how long to wait, and what of the request it sees.
public struct HTTPAuthSettings: Sendable, Equatable {
    /// `http://` or `https://` URL the GET goes to.
    public var url: String
    /// The whole call, connect to last byte; past it the client gets 503 (fail closed).
    public var timeout: TimeAmount = .seconds(2)
    /// How long a positive answer is reused for the same forwarded headers; nil: never.
    public var cache: TimeAmount?
    /// Client headers sent to the service as they are (lowercase names).
    public var forwardHeaders: [String] = ["authorization", "cookie"]

    public init(url: String) {
        self.url = url
    }
}

public struct AuthSettings: Sendable, Equatable {
    public var method: AuthMethod
    public var sources = TokenSources()

    public init(method: AuthMethod) {
        self.method = method
    }

    /// Whether the gateway itself takes a credential out of the request (every method but `http`,
    /// whose service reads the headers it is forwarded).
    var extractsCredential: Bool {
        if case .http = self.method { return false }
        return true
    }
}

/// JSON Web Tokens checked with jwt-kit: signature, then `exp`/`nbf` (always, when present),
/// `aud` and `iss` (when configured).
public struct JWTSettings: Sendable, Equatable {
    /// HS256 secret in a file (trailing newline ignored).
    public var hmacSecretFile: String?
    /// How the secret file holds the key: its text as it is, or base64url (a JWK's `k`, as
    /// websockify's JWTTokenApi reads its key file).
    public var hmacSecretEncoding: SecretEncoding = .raw

    public enum SecretEncoding: String, Sendable, Equatable {
        case raw
        case base64url
    }
    /// PEM public keys (RSA for RS256, P-256 for ES256) or raw 32-byte Ed25519 keys in base64url.
    public var publicKeyFiles: [String] = []
    /// A JWKS document (`{"keys": [...]}`): RSA, EC and OKP keys, chosen by `kid`.
    public var jwksFile: String?
    /// An identity provider's JWKS over HTTP(S): fetched at start, every `jwksRefresh`, and when
    /// a token names a key id not seen yet.
    public var jwksURL: String?
    public var jwksRefresh: TimeAmount = .minutes(5)
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
        /// `?token=abc`, else a `token=abc` cookie (as websockify reads it), else a `token.abc`
        /// entry in `Sec-WebSocket-Protocol`.
        case query
        /// The first label of the `Host` (`abc.vnc.example.com`).
        case host
    }

    /// `token: host:port` lines (websockify's format; `unix_socket:/path`, `ws://`/`wss://` URLs also
    /// accepted) in a file or a directory of files, re-read on change.
    public var tokenFile: String?
    /// Where `unix_socket:` targets may be: a socket whose real path is outside is refused (403).
    /// nil: `unix_socket:` targets are refused.
    public var unixDirectory: String?
    /// Take the target from the credential instead: the JWT claim named by `auth.jwt.target_claim`,
    /// or the `target` an `auth.http` service answers (YAML `from_jwt` or `from_auth`).
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

// MARK: YAML keys

extension ConfigurationValue where Value == OriginPolicy {
    /// `any`, `same-origin`, or a list of origins and `*.domain` patterns.
    static var origins: Self {
        let origin = ConfigurationValue<String>.parsed({ text in
            let valid = text == "null" || ParsedOrigin(text) != nil || (text.range(of: "*.").map { TargetPattern.isHostName(text[$0.upperBound...]) } ?? false)
            return valid ? text : nil
        }, invalid: { "'\($0)' is not an origin (https://host[:port]) or a *.domain pattern" }, show: { $0 })
        let list = ConfigurationValue<[String]>.list(origin, nonEmpty: "an empty list would refuse every browser; use same-origin")
        return Self(read: { reader, node, key throws(ConfigurationError) in
            guard case .scalar = node else { return .allowList(try list.read(reader, node, key)) }
            switch try reader.string(node, key) {
            case "any", "*": return .any
            case "same-origin": return .sameOrigin
            case let other: throw reader.fail(node, key, "expected any, same-origin or a list of origins, got '\(other)'")
            }
        }, show: \.description)
    }
}

extension ConfigurationValue where Value == AuthSettings {
    /// `auth:`, shown as its one-line description.
    static var auth: Self { Self(read: ConfigurationValue.section.read, show: \.description) }
}

extension AuthSettings: ConfigurationSection, CustomStringConvertible {
    /// One method (`bearer_tokens_file`, `bearer_tokens_env`, `basic_htpasswd`, `jwt`), then where
    /// tokens are looked for.
    static var keys: [ConfigurationKey<Self>] {
        [
            .custom("bearer_tokens_file") { auth, reader, node, key throws(ConfigurationError) in auth.method = .bearerTokens(file: try reader.string(node, key)) },
            .custom("bearer_tokens_env") { auth, reader, node, key throws(ConfigurationError) in
                auth.method = .bearerTokensFromEnvironment(variable: try reader.string(node, key))
            },
            .custom("basic_htpasswd") { auth, reader, node, key throws(ConfigurationError) in
                auth.method = .basic(htpasswdFile: try reader.string(node, key))
                // Basic credentials only come in the header.
                auth.sources.cookie = nil
                auth.sources.queryParameter = nil
                auth.sources.subprotocolPrefix = nil
            },
            .custom("jwt") { auth, reader, node, key throws(ConfigurationError) in auth.method = .jwt(try reader.read(JWTSettings.self, node, key)) },
            .custom("http") { auth, reader, node, key throws(ConfigurationError) in auth.method = .http(try reader.read(HTTPAuthSettings.self, node, key)) },
            .custom("token_sources") { auth, reader, node, key throws(ConfigurationError) in
                var sources = TokenSources()
                sources.header = false
                sources.cookie = nil
                sources.queryParameter = nil
                sources.subprotocolPrefix = nil
                for (index, item) in try reader.sequence(node, key).enumerated() {
                    switch try reader.string(item, "\(key)[\(index)]") {
                    case "header": sources.header = true
                    case "cookie": sources.cookie = TokenSources().cookie
                    case "query": sources.queryParameter = TokenSources().queryParameter
                    case "subprotocol": sources.subprotocolPrefix = TokenSources().subprotocolPrefix
                    case let other: throw reader.fail(item, "\(key)[\(index)]", "expected header, cookie, query or subprotocol, got '\(other)'")
                    }
                }
                auth.sources = sources
            },
            .optional("cookie", \.sources.cookie, .string),
            .optional("query_parameter", \.sources.queryParameter, .string),
            .optional("subprotocol_prefix", \.sources.subprotocolPrefix, ConfigurationValue<String>.string
                .checked("must be a non-empty token, e.g. bearer.") { !$0.isEmpty && HTTPTokens.isToken($0) }),
        ]
    }

    static var blank: Self { Self(method: .bearerTokensFromEnvironment(variable: "")) }

    static func finish(_ auth: inout Self, _ reader: ConfigurationReader, _ node: Node, _ key: String) throws(ConfigurationError) {
        let methods = ["bearer_tokens_file", "bearer_tokens_env", "basic_htpasswd", "jwt", "http"]
        let given = methods.filter { reader.locations.nodes["\(key).\($0)"] != nil }
        guard given.count == 1 else {
            throw reader.fail(node, key, given.isEmpty ? "needs one of \(methods.joined(separator: ", "))" : "give only one of \(given.joined(separator: ", "))")
        }
    }

    /// For `wsgate check`.
    public var description: String {
        let sources = [self.sources.header ? "header" : nil, self.sources.cookie.map { "cookie \($0)" }, self.sources.queryParameter.map { "query \($0)" },
                       self.sources.subprotocolPrefix.map { "subprotocol \($0)*" }].compactMap { $0 }.joined(separator: ",")
        switch self.method {
        case .bearerTokens(let file): return "bearer(file \(file); from \(sources))"
        case .bearerTokensFromEnvironment(let variable): return "bearer(env \(variable); from \(sources))"
        case .basic(let file): return "basic(htpasswd \(file))"
        case .jwt(let jwt):
            let keys = [jwt.hmacSecretFile.map { _ in "HS256" }, jwt.publicKeyFiles.isEmpty ? nil : "\(jwt.publicKeyFiles.count) public key(s)", jwt.jwksFile.map { _ in "JWKS" }, jwt.jwksURL.map { "JWKS from \($0)" }]
                .compactMap { $0 }.joined(separator: "+")
            return "jwt(\(keys); aud \(jwt.audiences?.joined(separator: ",") ?? "any"); iss \(jwt.issuer ?? "any"); from \(sources))"
        case .http(let http):
            return "http(\(http.url); timeout \(http.timeout.prettyDescription); cache \(http.cache?.prettyDescription ?? "off"); forwards \(http.forwardHeaders.joined(separator: ",")))"
        }
    }
}

extension HTTPAuthSettings: ConfigurationSection {
    static var keys: [ConfigurationKey<Self>] {
        [
            .value("url", \.url, ConfigurationValue<String>.string.checked("must be an http:// or https:// URL with a host") { text in
                guard let scheme = text.split(separator: ":").first?.lowercased(), scheme == "http" || scheme == "https" else { return false }
                return text.dropFirst(scheme.count).hasPrefix("://") && text.count > scheme.count + 3
            }).required(),
            .value("timeout", \.timeout, .positiveDuration),
            .value("cache", \.cache, .durationOrOff),
            .value("forward_headers", \.forwardHeaders, .list(.parsed({ HTTPTokens.isToken($0) ? $0.lowercased() : nil },
                                                                       invalid: { "'\($0)' is not a header name" }, show: { $0 }))),
        ]
    }

    static var blank: Self { Self(url: "") }
}

extension JWTSettings: ConfigurationSection {
    static var keys: [ConfigurationKey<Self>] {
        [
            .optional("hs256_secret_file", \.hmacSecretFile, .string),
            .value("hs256_secret_encoding", \.hmacSecretEncoding, .choice("raw or base64url")),
            .value("public_keys", \.publicKeyFiles, .list(.string)),
            .optional("jwks_file", \.jwksFile, .string),
            .optional("jwks_url", \.jwksURL, .parsed({ text in
                guard let url = URL(string: text), ["http", "https"].contains(url.scheme?.lowercased() ?? ""), url.host != nil else { return nil }
                return text
            }, invalid: { "expected an http:// or https:// URL, got '\($0)'" }, show: { $0 })),
            .value("jwks_refresh", \.jwksRefresh, .positiveDuration),
            .custom("audience") { jwt, reader, node, key throws(ConfigurationError) in
                let strings = ConfigurationValue<[String]>.list(.string)
                jwt.audiences = if case .sequence = node { try strings.read(reader, node, key) } else { [try reader.string(node, key)] }
            },
            .optional("issuer", \.issuer, .string),
            .value("leeway", \.leeway, .duration),
            .value("routes_claim", \.routesClaim, .string),
            .value("target_claim", \.targetClaim, .string),
            .value("require_exp", \.requireExpiry, .bool),
        ]
    }

    static var blank: Self { Self() }

    static func finish(_ jwt: inout Self, _ reader: ConfigurationReader, _ node: Node, _ key: String) throws(ConfigurationError) {
        guard jwt.hmacSecretFile != nil || !jwt.publicKeyFiles.isEmpty || jwt.jwksFile != nil || jwt.jwksURL != nil else {
            throw reader.fail(node, key, "needs keys: hs256_secret_file, public_keys, jwks_file or jwks_url")
        }
    }
}

extension DynamicTargets: ConfigurationSection {
    /// `token_file` or `from_jwt`, where the token is, and the targets it may name.
    static var keys: [ConfigurationKey<Self>] {
        [
            .optional("token_file", \.tokenFile, .string),
            .optional("unix_directory", \.unixDirectory, .string, unset: "none (unix_socket: targets refused)"),
            .value("from_jwt", \.fromJWT, .bool),
            .value("from_auth", \.fromJWT, .bool, shown: false),
            .value("token_from", \.tokenLocation, .choice("query or host")),
            .value("query_parameter", \.queryParameter, .string),
            .value("allowed", \.allowed, .list(.parsed(TargetPattern.init(parsing:), invalid: {
                "'\($0)' is not HOST:PORTS (HOST: IP, CIDR, name or *.domain; PORTS: 22, 5900-5999 or *)"
            }, show: \.description), nonEmpty: "an empty list would refuse every target")),
        ]
    }

    static var blank: Self { Self() }

    static func finish(_ targets: inout Self, _ reader: ConfigurationReader, _ node: Node, _ key: String) throws(ConfigurationError) {
        guard (targets.tokenFile != nil) != targets.fromJWT else {
            throw reader.fail(node, key, "needs exactly one of token_file or from_jwt: true (from_auth: true)")
        }
        // unix_socket: targets are confined by unix_directory; anything else needs allowed.
        guard !targets.allowed.isEmpty || targets.unixDirectory != nil else {
            throw reader.fail(node, "\(key).allowed", "missing: list the host:port patterns dynamic targets may reach (e.g. 127.0.0.1:5900-5999, 10.0.0.0/8:22)")
        }
    }
}

extension ConnectionLimits: ConfigurationSection {
    static var keys: [ConfigurationKey<Self>] {
        [
            .optional("max_connections", \.maxConnections, .integer(in: 1...10_000_000), unset: "auto (open-file limit / 2)"),
            .optional("max_connections_per_ip", \.maxConnectionsPerIP, .integer(in: 1...10_000_000)),
            .optional("handshake_rate_per_ip", \.handshakeRatePerIP, .parsed({ text in
                let number = text.hasSuffix("/s") ? String(text.dropLast(2)) : text
                return Double(number.trimmingWhitespace()).flatMap { $0 > 0 && $0.isFinite ? $0 : nil }
            }, invalid: { "expected handshakes per second, e.g. 20 or 0.5/s, got '\($0)'" }, show: { "\($0)/s" })),
            .value("max_header_count", \.maxHeaderCount, .integer(in: 8...1000)),
        ]
    }

    static var blank: Self { Self() }
}
