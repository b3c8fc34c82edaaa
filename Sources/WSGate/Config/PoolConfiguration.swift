import NIOCore
import Yams

/// How a route with several `backends` picks the target for a session.
public enum BalancePolicy: Sendable, Equatable, CustomStringConvertible {
    /// Each session goes to the next healthy target in turn.
    case roundRobin
    /// The healthy target with the fewest open sessions (ties in turn).
    case leastConnections
    /// Rendezvous hash of the client's IP address: a client keeps its target while that target is
    /// healthy, and only the clients of a target that leaves move.
    case hashClientIP
    /// The same on a request header's value (`X-Session-Id`); requests without it go in turn.
    case hashHeader(String)
    /// The same on a query parameter's value (`?session=…`); requests without it go in turn.
    case hashQuery(String)

    public var description: String {
        switch self {
        case .roundRobin: return "round_robin"
        case .leastConnections: return "least_connections"
        case .hashClientIP: return "hash_client_ip"
        case .hashHeader(let name): return "hash_header \(name)"
        case .hashQuery(let name): return "hash_query \(name)"
        }
    }
}

/// Active health checks: every `interval`, each target is connected to (`tcp`) or opened as a
/// WebSocket (`websocket`, a 101 then a close). `fall` failures in a row take it out of rotation,
/// `rise` successes in a row bring it back.
public struct HealthCheckSettings: Sendable, Equatable, Hashable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable, Hashable {
        case tcp
        /// A WebSocket handshake to `path` (nil: the target URL's own path and query).
        case webSocket(path: String?)
    }

    public var kind: Kind
    public var interval: TimeAmount = .seconds(5)
    public var timeout: TimeAmount = .seconds(2)
    public var rise = 2
    public var fall = 3

    public init(kind: Kind) {
        self.kind = kind
    }

    public var description: String {
        let what: String
        switch self.kind {
        case .tcp: what = "tcp"
        case .webSocket(let path): what = "websocket \(path ?? "(target path)")"
        }
        return "\(what) every \(self.interval.prettyDescription), timeout \(self.timeout.prettyDescription), rise \(self.rise), fall \(self.fall)"
    }
}

/// Passive health: sessions whose connect to a target fails count against it; `failures` in a row
/// eject it for `ejectFor`, doubled at each further ejection up to `maxEjectFor`, reset by a success.
public struct PassiveHealthSettings: Sendable, Equatable, Hashable {
    /// 0 turns passive ejection off.
    public var failures = 3
    public var ejectFor: TimeAmount = .seconds(10)
    public var maxEjectFor: TimeAmount = .minutes(5)

    public init() {}
}

/// A route's pool: its targets are `RouteConfiguration.backends`; these say how they are used.
public struct PoolSettings: Sendable, Equatable {
    public var balance = BalancePolicy.roundRobin
    /// nil: no active checks (passive ejection still applies).
    public var healthCheck: HealthCheckSettings?
    public var passiveHealth = PassiveHealthSettings()
    /// Targets tried for one session before the client gets 502/504: a failed connect (refused,
    /// timed out, TLS or handshake failure, a 5xx answer) moves on to the next. At most the
    /// number of targets.
    public var connectAttempts = 3
    /// All attempts together, so a client is not kept waiting `connect_timeout` × attempts when
    /// targets black-hole. nil: twice `connect_timeout`. Never shorter than one `connect_timeout`.
    public var connectDeadline: TimeAmount?

    public init() {}

    /// The deadline for all of a session's attempts.
    func deadline(connectTimeout: TimeAmount) -> TimeAmount {
        max(self.connectDeadline ?? connectTimeout * 2, connectTimeout)
    }
}

extension RouteConfiguration {
    /// Where the route sends sessions, for the start-up log and `wsgate check`.
    public var backendSummary: String {
        let files = self.staticFiles.map { "files \($0.root)\($0.listing ? " (listing)" : "")" }
        guard self.servesWebSockets else { return files ?? "" }
        return self.webSocketSummary + (files.map { " + " + $0 } ?? "")
    }

    private var webSocketSummary: String {
        if let targets = self.targets {
            return "dynamic(\(targets.fromJWT ? "jwt claim" : "token file \(targets.tokenFile ?? "")"), allowed: \(targets.allowed.map(\.description).joined(separator: ",")))"
        }
        guard self.backends.count > 1 || self.pool.healthCheck != nil else { return "\(self.backend)" }
        var text = "pool[\(self.backends.map(\.description).joined(separator: ", "))] balance=\(self.pool.balance)"
        if let check = self.pool.healthCheck { text += " health_check=(\(check))" }
        let passive = self.pool.passiveHealth
        text += passive.failures == 0 ? " passive_health=off" : " passive_health=(eject after \(passive.failures) failures for \(passive.ejectFor.prettyDescription)..\(passive.maxEjectFor.prettyDescription))"
        return text
    }
}

// MARK: YAML keys

extension ConfigurationValue where Value == BalancePolicy {
    /// `round_robin`, `least_connections`, `hash_client_ip`, `{hash_header: NAME}`, `{hash_query: NAME}`.
    static var balance: Self {
        let expected = "expected round_robin, least_connections, hash_client_ip, {hash_header: NAME} or {hash_query: NAME}"
        return Self(read: { reader, node, key throws(ConfigurationError) in
            if case .mapping = node {
                let entries = try reader.mapping(node, key, allowed: ["hash_header", "hash_query"])
                guard entries.count == 1, let (name, value) = entries.first else { throw reader.fail(node, key, expected) }
                let text = try reader.string(value, "\(key).\(name)")
                guard !text.isEmpty, HTTPTokens.isToken(text) || name == "hash_query" else { throw reader.fail(value, "\(key).\(name)", "'\(text)' is not a header name") }
                return name == "hash_header" ? .hashHeader(text) : .hashQuery(text)
            }
            switch try reader.string(node, key) {
            case "round_robin": return .roundRobin
            case "least_connections": return .leastConnections
            case "hash_client_ip": return .hashClientIP
            case let other: throw reader.fail(node, key, "\(expected), got '\(other)'")
            }
        }, show: \.description)
    }
}

extension HealthCheckSettings: ConfigurationSection {
    static var keys: [ConfigurationKey<Self>] {
        [
            .custom("type") { check, reader, node, key throws(ConfigurationError) in
                switch try reader.string(node, key) {
                case "tcp": check.kind = .tcp
                case "websocket": check.kind = .webSocket(path: nil)
                case let other: throw reader.fail(node, key, "expected 'tcp' or 'websocket', got '\(other)'")
                }
            },
            .custom("path") { check, reader, node, key throws(ConfigurationError) in
                guard case .webSocket = check.kind else { throw reader.fail(node, key, "only applies to websocket checks") }
                let path = try reader.string(node, key)
                guard path.hasPrefix("/") else { throw reader.fail(node, key, "must start with '/'") }
                check.kind = .webSocket(path: path)
            },
            .value("interval", \.interval, .positiveDuration),
            .value("timeout", \.timeout, .positiveDuration),
            .value("rise", \.rise, .integer(in: 1...100)),
            .value("fall", \.fall, .integer(in: 1...100)),
        ]
    }

    /// A WebSocket check until the route's targets say otherwise (``settle(byteStream:_:_:)``).
    static var blank: Self { Self(kind: .webSocket(path: nil)) }

    /// Fits the check to the route's targets: tcp/unix targets get a TCP check unless a
    /// WebSocket one was asked for, which they cannot answer.
    mutating func settle(byteStream: Bool, _ reader: ConfigurationReader, _ key: String) throws(ConfigurationError) {
        guard byteStream else { return }
        if let type = reader.locations.nodes["\(key).type"] {
            if case .webSocket = self.kind { throw reader.fail(type, "\(key).type", "websocket checks need ws:// or wss:// targets") }
        } else if let path = reader.locations.nodes["\(key).path"] {
            throw reader.fail(path, "\(key).path", "only applies to websocket checks")
        }
        self.kind = .tcp
    }
}

extension PassiveHealthSettings: ConfigurationSection {
    static var keys: [ConfigurationKey<Self>] {
        [
            .value("failures", \.failures, .integer(in: 0...100)),
            .value("eject_for", \.ejectFor, .positiveDuration),
            .value("max_eject_for", \.maxEjectFor, .positiveDuration),
        ]
    }

    static var blank: Self { Self() }

    static func finish(_ passive: inout Self, _ reader: ConfigurationReader, _ node: Node, _ key: String) throws(ConfigurationError) {
        if passive.maxEjectFor < passive.ejectFor {
            throw reader.fail(node, "\(key).max_eject_for", "is shorter than eject_for")
        }
    }
}
