import Foundation
import NIOCore
import Yams

/// Reads a YAML configuration file into a ``GatewayConfiguration``.
///
/// The YAML is composed into nodes rather than decoded with `Codable`, so that every error can name
/// the line and the key, and unknown keys (usually typos) are rejected instead of silently ignored.
public enum ConfigurationLoader {
    public static func load(file path: String) throws(ConfigurationError) -> GatewayConfiguration {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigurationError(file: path, message: "cannot read file: \(error.localizedDescription)")
        }
        return try self.parse(yaml: text, file: path)
    }

    /// - Parameter environment: values for `${NAME}` references (see ``EnvironmentSubstitution``).
    public static func parse(yaml: String, file: String? = nil, environment: [String: String] = ProcessInfo.processInfo.environment) throws(ConfigurationError) -> GatewayConfiguration {
        let yaml = try EnvironmentSubstitution.apply(yaml, environment: environment, file: file)
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch let error as YamlError {
            throw Self.error(from: error, file: file)
        } catch {
            throw ConfigurationError(file: file, message: "invalid YAML: \(error)")
        }
        guard let root else { throw ConfigurationError(file: file, message: "the file is empty") }
        let reader = NodeReader(file: file)
        return try reader.configuration(root)
    }

    private static func error(from error: YamlError, file: String?) -> ConfigurationError {
        switch error {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _):
            return ConfigurationError(file: file, line: mark.line, column: mark.column, message: "invalid YAML: \(problem)")
        default:
            return ConfigurationError(file: file, message: "invalid YAML: \(error)")
        }
    }
}

/// Walks the YAML node tree, building the model and locating every error.
private struct NodeReader {
    let file: String?

    func fail(_ node: Node?, _ key: String?, _ message: String) -> ConfigurationError {
        ConfigurationError(file: self.file, line: node?.mark?.line, column: node?.mark?.column, key: key, message: message)
    }

    /// The entries of a mapping, with unknown keys rejected.
    func mapping(_ node: Node, _ key: String?, allowed: [String]) throws(ConfigurationError) -> [String: Node] {
        guard case .mapping(let mapping) = node else { throw self.fail(node, key, "expected a mapping of keys to values") }
        var entries: [String: Node] = [:]
        for (keyNode, value) in mapping {
            guard let name = keyNode.string else { throw self.fail(keyNode, key, "keys must be strings") }
            let path = key.map { "\($0).\(name)" } ?? name
            guard allowed.contains(name) else {
                throw self.fail(keyNode, path, "unknown key (expected one of: \(allowed.joined(separator: ", ")))")
            }
            guard entries[name] == nil else { throw self.fail(keyNode, path, "key given twice") }
            entries[name] = value
        }
        return entries
    }

    func sequence(_ node: Node, _ key: String) throws(ConfigurationError) -> [Node] {
        guard case .sequence(let sequence) = node else { throw self.fail(node, key, "expected a list") }
        return Array(sequence)
    }

    func string(_ node: Node, _ key: String) throws(ConfigurationError) -> String {
        guard case .scalar(let scalar) = node else { throw self.fail(node, key, "expected a string") }
        return scalar.string
    }

    func duration(_ node: Node, _ key: String) throws(ConfigurationError) -> TimeAmount {
        let text = try self.string(node, key)
        guard let value = ValueParsing.duration(text) else {
            throw self.fail(node, key, "invalid duration '\(text)' (use e.g. 500ms, 30s, 5m, 1h)")
        }
        return value
    }

    func bool(_ node: Node, _ key: String) throws(ConfigurationError) -> Bool {
        let text = try self.string(node, key)
        switch text.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: throw self.fail(node, key, "expected true/false (or on/off), got '\(text)'")
        }
    }

    func integer(_ node: Node, _ key: String, in range: ClosedRange<Int>) throws(ConfigurationError) -> Int {
        let text = try self.string(node, key)
        guard let value = Int(text), range.contains(value) else {
            throw self.fail(node, key, "expected a whole number from \(range.lowerBound) to \(range.upperBound), got '\(text)'")
        }
        return value
    }

    func size(_ node: Node, _ key: String) throws(ConfigurationError) -> Int {
        let text = try self.string(node, key)
        guard let value = ValueParsing.size(text), value > 0 else {
            throw self.fail(node, key, "invalid size '\(text)' (a positive number of bytes, or e.g. 64KiB, 16MiB)")
        }
        return value
    }

    func configuration(_ root: Node) throws(ConfigurationError) -> GatewayConfiguration {
        let top = try self.mapping(root, nil, allowed: ["listeners", "routes", "server", "limits", "admin"])
        var server = ServerSettings()
        if let node = top["server"] { server = try self.server(node) }
        if let node = top["limits"] { server.limits = try self.connectionLimits(node) }

        guard let listenersNode = top["listeners"] else { throw self.fail(root, "listeners", "missing: at least one listener is needed") }
        var listeners: [ListenerConfiguration] = []
        for (index, node) in try self.sequence(listenersNode, "listeners").enumerated() {
            let key = "listeners[\(index)]"
            let entries = try self.mapping(node, key, allowed: ["address", "tls", "proxy_protocol", "reuse_port"])
            var listener = ListenerConfiguration(address: try self.address(in: entries, node, key))
            if let n = entries["reuse_port"] {
                listener.reusePort = try self.bool(n, "\(key).reuse_port")
            }
            if let n = entries["proxy_protocol"] {
                let proxy = try self.mapping(n, "\(key).proxy_protocol", allowed: ["trusted"])
                guard let trusted = proxy["trusted"] else { throw self.fail(n, "\(key).proxy_protocol.trusted", "missing: the proxies (CIDRs) allowed to send PROXY headers") }
                listener.proxyProtocolFrom = try self.networks(trusted, "\(key).proxy_protocol.trusted")
            }
            if let tlsNode = entries["tls"] {
                let tls = try self.mapping(tlsNode, "\(key).tls", allowed: ["certificate", "key", "client_ca", "client_certificate"])
                guard let certificate = tls["certificate"] else { throw self.fail(tlsNode, "\(key).tls.certificate", "missing") }
                guard let keyFile = tls["key"] else { throw self.fail(tlsNode, "\(key).tls.key", "missing") }
                listener.tls = ListenerTLS(
                    certificateFile: try self.readableFile(certificate, "\(key).tls.certificate"),
                    keyFile: try self.readableFile(keyFile, "\(key).tls.key")
                )
                if let ca = tls["client_ca"] { listener.tls?.clientCAFile = try self.readableFile(ca, "\(key).tls.client_ca") }
                if let n = tls["client_certificate"] {
                    guard listener.tls?.clientCAFile != nil else { throw self.fail(n, "\(key).tls.client_certificate", "needs client_ca") }
                    switch try self.string(n, "\(key).tls.client_certificate") {
                    case "required": listener.tls?.clientCertificateRequired = true
                    case "optional": listener.tls?.clientCertificateRequired = false
                    case let other: throw self.fail(n, "\(key).tls.client_certificate", "expected required or optional, got '\(other)'")
                    }
                }
            }
            listeners.append(listener)
        }
        if listeners.isEmpty { throw self.fail(listenersNode, "listeners", "at least one listener is needed") }

        guard let routesNode = top["routes"] else { throw self.fail(root, "routes", "missing: at least one route is needed") }
        var routes: [RouteConfiguration] = []
        for (index, node) in try self.sequence(routesNode, "routes").enumerated() {
            routes.append(try self.route(node, "routes[\(index)]"))
        }
        if routes.isEmpty { throw self.fail(routesNode, "routes", "at least one route is needed") }
        var configuration = GatewayConfiguration(listeners: listeners, routes: routes, server: server)
        if let node = top["admin"] {
            let admin = try self.mapping(node, "admin", allowed: ["address"])
            configuration.admin = AdminConfiguration(address: try self.address(in: admin, node, "admin"))
        }
        return configuration
    }

    /// The required `address` of a listener or of the admin listener.
    func address(in entries: [String: Node], _ node: Node, _ key: String) throws(ConfigurationError) -> ListenAddress {
        guard let addressNode = entries["address"] else { throw self.fail(node, "\(key).address", "missing") }
        let text = try self.string(addressNode, "\(key).address")
        guard let address = ListenAddress(parsing: text) else { throw self.fail(addressNode, "\(key).address", ListenAddress.invalid(text)) }
        return address
    }

    func server(_ node: Node) throws(ConfigurationError) -> ServerSettings {
        let entries = try self.mapping(node, "server", allowed: ["handshake_timeout", "max_request_head_bytes", "close_timeout", "drain_timeout", "threads", "http2", "trusted_proxies"])
        var server = ServerSettings()
        if let n = entries["trusted_proxies"] { server.trustedProxies = try self.networks(n, "server.trusted_proxies") }
        if let n = entries["handshake_timeout"] {
            server.handshakeTimeout = try self.positiveDuration(n, "server.handshake_timeout")
        }
        if let n = entries["close_timeout"] {
            server.closeTimeout = try self.positiveDuration(n, "server.close_timeout")
        }
        if let n = entries["drain_timeout"] {
            server.drainTimeout = try self.positiveDuration(n, "server.drain_timeout")
        }
        if let n = entries["max_request_head_bytes"] {
            server.maxRequestHeadBytes = try self.size(n, "server.max_request_head_bytes")
            // NIO's HTTP parser has its own 80 KiB ceiling; staying under it keeps the answer a 431.
            guard (256...65536).contains(server.maxRequestHeadBytes) else {
                throw self.fail(n, "server.max_request_head_bytes", "must be from 256 bytes to 64KiB")
            }
        }
        if let n = entries["http2"] {
            let http2 = try self.mapping(n, "server.http2", allowed: ["max_concurrent_streams", "initial_window_size", "max_header_list_size"])
            if let m = http2["max_concurrent_streams"] {
                server.http2.maxConcurrentStreams = try self.count(m, "server.http2.max_concurrent_streams", in: 1...10_000)
            }
            if let m = http2["initial_window_size"] {
                // RFC 9113 §6.9.2: at most 2^31-1.
                server.http2.initialWindowSize = try self.count(m, "server.http2.initial_window_size", in: 1024...Int(Int32.max))
            }
            if let m = http2["max_header_list_size"] {
                server.http2.maxHeaderListSize = try self.count(m, "server.http2.max_header_list_size", in: 1024...(1 << 20))
            }
        }
        if let n = entries["threads"] {
            guard let threads = n.int, threads > 0, threads <= 1024 else { throw self.fail(n, "server.threads", "expected a thread count from 1 to 1024") }
            server.threads = threads
        }
        return server
    }

    /// A size-like number within `range` (plain bytes or with a KiB/MiB suffix).
    func count(_ node: Node, _ key: String, in range: ClosedRange<Int>) throws(ConfigurationError) -> UInt32 {
        let value = try self.size(node, key)
        guard range.contains(value) else { throw self.fail(node, key, "must be from \(range.lowerBound) to \(range.upperBound)") }
        return UInt32(value)
    }

    /// A path to a file that exists and can be read now (it is read again on reload).
    func readableFile(_ node: Node, _ key: String) throws(ConfigurationError) -> String {
        let path = try self.string(node, key)
        guard FileManager.default.isReadableFile(atPath: path) else { throw self.fail(node, key, "cannot read file '\(path)'") }
        return path
    }

    func positiveDuration(_ node: Node, _ key: String) throws(ConfigurationError) -> TimeAmount {
        let value = try self.duration(node, key)
        guard value > .zero else { throw self.fail(node, key, "must be greater than zero") }
        return value
    }

    /// `compression: off | on | {enabled, level, window_bits, memory_level, client_window_bits,
    /// server_no_context_takeover, min_size}`.
    func compression(_ node: Node, _ key: String) throws(ConfigurationError) -> CompressionSettings {
        var settings = CompressionSettings()
        if case .scalar = node {
            settings.enabled = try self.bool(node, key)
            return settings
        }
        let entries = try self.mapping(node, key, allowed: ["enabled", "level", "window_bits", "memory_level", "client_window_bits", "server_no_context_takeover", "min_size"])
        settings.enabled = true
        if let n = entries["enabled"] { settings.enabled = try self.bool(n, "\(key).enabled") }
        if let n = entries["level"] { settings.level = try self.integer(n, "\(key).level", in: 1...9) }
        if let n = entries["window_bits"] { settings.windowBits = try self.integer(n, "\(key).window_bits", in: 9...15) }
        if let n = entries["memory_level"] { settings.memoryLevel = try self.integer(n, "\(key).memory_level", in: 1...9) }
        if let n = entries["client_window_bits"] { settings.clientWindowBits = try self.integer(n, "\(key).client_window_bits", in: 8...15) }
        if let n = entries["server_no_context_takeover"] { settings.serverNoContextTakeover = try self.bool(n, "\(key).server_no_context_takeover") }
        if let n = entries["min_size"] {
            settings.minimumMessageBytes = try self.string(n, "\(key).min_size") == "0" ? 0 : try self.size(n, "\(key).min_size")
        }
        return settings
    }

    func route(_ node: Node, _ key: String) throws(ConfigurationError) -> RouteConfiguration {
        let entries = try self.mapping(node, key, allowed: ["path", "match", "backend", "backend_tls", "subprotocols", "message_type", "limits", "compression", "backend_compression",
                                                             "origins", "auth", "targets", "backend_proxy_protocol", "client_subjects",
                                                             "backends", "balance", "health_check", "passive_health", "host", "static", "record", "framing", "invalid_utf8"])
        guard let pathNode = entries["path"] else { throw self.fail(node, "\(key).path", "missing") }
        let path = try self.string(pathNode, "\(key).path")
        guard path.hasPrefix("/") else { throw self.fail(pathNode, "\(key).path", "must start with '/'") }
        guard !path.contains("?"), !path.contains("#") else { throw self.fail(pathNode, "\(key).path", "must not contain a query or fragment") }

        var targets: DynamicTargets?
        if let n = entries["targets"] { targets = try self.targets(n, "\(key).targets") }
        let staticFiles = try entries["static"].map { n throws(ConfigurationError) in try self.staticFiles(n, "\(key).static") }
        let servesWebSockets = staticFiles == nil || targets != nil || entries["backend"] != nil || entries["backends"] != nil
        let backends = servesWebSockets ? try self.backends(entries, node, key, dynamic: targets != nil) : [BackendURL.none]
        let backend = backends[0]
        var route = RouteConfiguration(path: path, backend: backend)
        if let n = entries["host"] {
            let text = try self.string(n, "\(key).host")
            guard let host = HostPattern(parsing: text) else {
                throw self.fail(n, "\(key).host", "expected a host name (app.example.com) or *.domain (*.example.com), without a port, got '\(text)'")
            }
            route.host = host
        }
        route.backends = backends
        route.staticFiles = staticFiles
        if let n = entries["record"] {
            guard servesWebSockets else { throw self.fail(n, "\(key).record", "a route that only serves files has no sessions to record") }
            route.record = try self.record(n, "\(key).record")
        }
        route.servesWebSockets = servesWebSockets
        route.targets = targets
        route.pool = try self.pool(entries, backends: backends, key)
        if let n = entries["origins"] { route.origins = try self.origins(n, "\(key).origins") }
        if let n = entries["client_subjects"] {
            var subjects: [String] = []
            for (index, item) in try self.sequence(n, "\(key).client_subjects").enumerated() {
                let text = try self.string(item, "\(key).client_subjects[\(index)]")
                guard text.contains("=") else { throw self.fail(item, "\(key).client_subjects[\(index)]", "expected an attribute such as CN=alice or O=Ops (or a whole subject), got '\(text)'") }
                subjects.append(text)
            }
            route.clientSubjects = subjects
        }
        if let n = entries["backend_proxy_protocol"] {
            if case .webSocket = backend { throw self.fail(n, "\(key).backend_proxy_protocol", "only applies to tcp:// and unix: backends (WebSocket backends get X-Forwarded-For and Forwarded)") }
            let text = try self.string(n, "\(key).backend_proxy_protocol")
            guard let version = ProxyProtocol.Version(rawValue: text) else { throw self.fail(n, "\(key).backend_proxy_protocol", "expected v1 or v2, got '\(text)'") }
            route.backendProxyProtocol = version
        }
        if let n = entries["auth"] { route.auth = try self.auth(n, "\(key).auth") }
        if staticFiles != nil, let n = entries["auth"] ?? entries["client_subjects"] {
            throw self.fail(n, "\(key).static", "files are served without credentials: give the WebSocket route with auth or client_subjects a path of its own")
        }
        if targets?.fromJWT == true {
            guard case .jwt = route.auth?.method else { throw self.fail(entries["targets"], "\(key).targets.from_jwt", "needs auth.jwt on the same route") }
        }
        if let n = entries["match"] {
            let text = try self.string(n, "\(key).match")
            guard let match = PathMatch(rawValue: text) else { throw self.fail(n, "\(key).match", "expected 'prefix' or 'exact', got '\(text)'") }
            route.match = match
        }
        if let n = entries["subprotocols"] {
            var names: [String] = []
            for (i, item) in try self.sequence(n, "\(key).subprotocols").enumerated() {
                let name = try self.string(item, "\(key).subprotocols[\(i)]")
                guard HTTPTokens.isToken(name) else {
                    throw self.fail(item, "\(key).subprotocols[\(i)]", "'\(name)' is not a valid subprotocol token")
                }
                names.append(name)
            }
            route.subprotocols = names
        }
        if let n = entries["message_type"] {
            let text = try self.string(n, "\(key).message_type")
            guard let type = TCPMessageType(rawValue: text) else { throw self.fail(n, "\(key).message_type", "expected 'binary' or 'text', got '\(text)'") }
            if case .webSocket = backend { throw self.fail(n, "\(key).message_type", "only applies to tcp:// and unix: backends") }
            route.messageType = type
        }
        if let n = entries["framing"] {
            guard backend.isByteStream, servesWebSockets else { throw self.fail(n, "\(key).framing", "only applies to tcp:// and unix: backends") }
            route.framing = try self.framing(n, "\(key).framing")
        }
        if let n = entries["invalid_utf8"] {
            let text = try self.string(n, "\(key).invalid_utf8")
            guard let policy = InvalidUTF8Policy(rawValue: text) else { throw self.fail(n, "\(key).invalid_utf8", "expected 'binary' or 'close', got '\(text)'") }
            guard route.messageType == .text else { throw self.fail(n, "\(key).invalid_utf8", "only applies with message_type: text") }
            route.invalidUTF8 = policy
        }
        if let n = entries["backend_tls"] {
            guard case .webSocket(_, _, _, _, true) = backend else { throw self.fail(n, "\(key).backend_tls", "only applies to wss:// backends") }
            let tls = try self.mapping(n, "\(key).backend_tls", allowed: ["ca", "server_name"])
            if let ca = tls["ca"] { route.backendTLS.caFile = try self.readableFile(ca, "\(key).backend_tls.ca") }
            if let name = tls["server_name"] { route.backendTLS.serverName = try self.string(name, "\(key).backend_tls.server_name") }
        }
        if let n = entries["compression"] {
            route.compression = try self.compression(n, "\(key).compression")
        }
        if let n = entries["backend_compression"] {
            guard case .webSocket = backend else { throw self.fail(n, "\(key).backend_compression", "only applies to ws:// and wss:// backends") }
            route.backendCompression = try self.bool(n, "\(key).backend_compression")
        }
        if let n = entries["limits"] {
            let limits = try self.mapping(n, "\(key).limits", allowed: ["max_message_bytes", "max_frame_bytes", "idle_timeout", "connect_timeout", "ping_interval",
                                                                        "connect_attempts", "connect_deadline"])
            if let m = limits["ping_interval"] {
                let value = try self.duration(m, "\(key).limits.ping_interval")
                route.limits.pingInterval = value == .zero ? nil : value
            }
            if let m = limits["max_frame_bytes"] {
                route.limits.maxFrameBytes = try self.size(m, "\(key).limits.max_frame_bytes")
            }
            if let m = limits["max_message_bytes"] {
                route.limits.maxMessageBytes = try self.size(m, "\(key).limits.max_message_bytes")
            }
            if let m = limits["idle_timeout"] {
                let value = try self.duration(m, "\(key).limits.idle_timeout")
                route.limits.idleTimeout = value == .zero ? nil : value
            }
            if let m = limits["connect_timeout"] {
                route.limits.connectTimeout = try self.positiveDuration(m, "\(key).limits.connect_timeout")
            }
            if let m = limits["connect_attempts"] {
                route.pool.connectAttempts = try self.integer(m, "\(key).limits.connect_attempts", in: 1...16)
            }
            if let m = limits["connect_deadline"] {
                route.pool.connectDeadline = try self.positiveDuration(m, "\(key).limits.connect_deadline")
            }
        }
        return route
    }
}

// MARK: Backend pools

extension NodeReader {
    /// `backend: URL` or `backends: [URL, …]` (one family), or the placeholder of a dynamic route.
    func backends(_ entries: [String: Node], _ node: Node, _ key: String, dynamic: Bool) throws(ConfigurationError) -> [BackendURL] {
        if let n = entries["backend"], entries["backends"] != nil {
            throw self.fail(n, "\(key).backend", "give either backend (one target) or backends (a pool), not both")
        }
        if dynamic {
            if let n = entries["backend"] ?? entries["backends"] {
                throw self.fail(n, "\(key).backend", "a route with targets takes its backend from the request: remove backend")
            }
            return [.dynamic]
        }
        if let n = entries["backend"] {
            return [try self.backendURL(n, "\(key).backend")]
        }
        guard let n = entries["backends"] else {
            throw self.fail(node, "\(key).backend", "missing (or give backends for a pool, or targets for a backend chosen per request)")
        }
        var urls: [BackendURL] = []
        for (index, item) in try self.sequence(n, "\(key).backends").enumerated() {
            let url = try self.backendURL(item, "\(key).backends[\(index)]")
            if let first = urls.first, url.isByteStream != first.isByteStream {
                throw self.fail(item, "\(key).backends[\(index)]", "a pool's targets must all be tcp:/unix: or all ws:/wss: (\(first) and \(url) differ)")
            }
            guard !urls.contains(url) else { throw self.fail(item, "\(key).backends[\(index)]", "\(url) is listed twice") }
            urls.append(url)
        }
        guard !urls.isEmpty else { throw self.fail(n, "\(key).backends", "needs at least one target") }
        return urls
    }

    /// `static: DIR` or `static: {root: DIR, index: FILE|"", listing: BOOL, cache_control: TEXT}`.
    /// A relative DIR is taken from the configuration file's directory (or the working directory).
    func staticFiles(_ node: Node, _ key: String) throws(ConfigurationError) -> StaticSettings {
        let entries = try self.shortOrLong(node, key, main: "root", allowed: ["index", "listing", "cache_control"])
        guard let rootNode = entries["root"] else { throw self.fail(node, "\(key).root", "missing") }
        let root = self.relativeToFile(try self.string(rootNode, "\(key).root"))
        guard let real = StaticFileLookup.resolve(root, within: "/") else {
            throw self.fail(rootNode, "\(key).root", "cannot open directory \(root)")
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: real, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw self.fail(rootNode, "\(key).root", "\(root) is not a directory")
        }
        var settings = StaticSettings(root: real)
        if let n = entries["index"] {
            let index = try self.string(n, "\(key).index")
            guard !index.contains("/"), !index.hasPrefix(".") else { throw self.fail(n, "\(key).index", "expected a file name, got '\(index)'") }
            settings.index = index.isEmpty ? nil : index
        }
        if let n = entries["listing"] { settings.listing = try self.bool(n, "\(key).listing") }
        if let n = entries["cache_control"] { settings.cacheControl = try self.string(n, "\(key).cache_control") }
        return settings
    }

    /// `key: VALUE` as shorthand for `key: {main: VALUE}`; the long form may add `allowed` keys.
    func shortOrLong(_ node: Node, _ key: String, main: String, allowed: [String]) throws(ConfigurationError) -> [String: Node] {
        guard case .mapping = node else { return [main: node] }
        return try self.mapping(node, key, allowed: [main] + allowed)
    }

    /// A relative path from the file is taken from the file's directory (from the working
    /// directory for text without a file).
    func relativeToFile(_ path: String) -> String {
        guard !path.hasPrefix("/") else { return path }
        let base = self.file.map { URL(fileURLWithPath: $0).deletingLastPathComponent().path } ?? FileManager.default.currentDirectoryPath
        return base + "/" + path
    }

    /// `raw`, `lines`, `length_prefixed: KIND` as `{length_prefixed: KIND}`, or the long forms
    /// `{lines: {line_ending, max_line_bytes, overflow, keep_line_ending}}` and
    /// `{length_prefixed: {prefix: KIND, max_message_bytes}}`.
    func framing(_ node: Node, _ key: String) throws(ConfigurationError) -> TCPFraming {
        let kinds = LengthPrefix.Kind.allCases.map(\.rawValue).joined(separator: ", ")
        guard case .mapping = node else {
            switch try self.string(node, key) {
            case "raw": return .raw
            case "lines": return .lines(LineFraming())
            case let other: throw self.fail(node, key, "expected raw, lines, {lines: {…}} or {length_prefixed: \(kinds)}, got '\(other)'")
            }
        }
        let entries = try self.mapping(node, key, allowed: ["lines", "length_prefixed"])
        guard entries.count == 1, let (name, value) = entries.first else { throw self.fail(node, key, "give one of lines or length_prefixed") }
        if name == "lines" {
            var lines = LineFraming()
            let options = try self.mapping(value, "\(key).lines", allowed: ["line_ending", "max_line_bytes", "overflow", "keep_line_ending"])
            if let n = options["line_ending"] {
                let text = try self.string(n, "\(key).lines.line_ending")
                guard let ending = LineFraming.LineEnding(rawValue: text) else { throw self.fail(n, "\(key).lines.line_ending", "expected lf or crlf, got '\(text)'") }
                lines.lineEnding = ending
            }
            if let n = options["max_line_bytes"] { lines.maxLineBytes = try self.size(n, "\(key).lines.max_line_bytes") }
            if let n = options["overflow"] {
                let text = try self.string(n, "\(key).lines.overflow")
                guard let overflow = LineFraming.Overflow(rawValue: text) else { throw self.fail(n, "\(key).lines.overflow", "expected close or split, got '\(text)'") }
                lines.overflow = overflow
            }
            if let n = options["keep_line_ending"] { lines.keepLineEnding = try self.bool(n, "\(key).lines.keep_line_ending") }
            return .lines(lines)
        }
        var kindNode = value
        var maxMessageBytes: Int?
        if case .mapping = value {
            let options = try self.mapping(value, "\(key).length_prefixed", allowed: ["prefix", "max_message_bytes"])
            guard let n = options["prefix"] else { throw self.fail(value, "\(key).length_prefixed.prefix", "missing (\(kinds))") }
            kindNode = n
            if let n = options["max_message_bytes"] { maxMessageBytes = try self.size(n, "\(key).length_prefixed.max_message_bytes") }
        }
        let text = try self.string(kindNode, "\(key).length_prefixed")
        guard let kind = LengthPrefix.Kind(rawValue: text) else { throw self.fail(kindNode, "\(key).length_prefixed", "expected one of \(kinds), got '\(text)'") }
        var prefix = LengthPrefix(kind: kind)
        prefix.maxMessageBytes = maxMessageBytes
        return .lengthPrefixed(prefix)
    }

    /// `record: DIR` or `record: {directory: DIR, max_file_bytes, max_total_bytes, max_files}`.
    func record(_ node: Node, _ key: String) throws(ConfigurationError) -> RecordSettings {
        let entries = try self.shortOrLong(node, key, main: "directory", allowed: ["max_file_bytes", "max_total_bytes", "max_files"])
        guard let directoryNode = entries["directory"] else { throw self.fail(node, "\(key).directory", "missing") }
        let directory = self.relativeToFile(try self.string(directoryNode, "\(key).directory"))
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw self.fail(directoryNode, "\(key).directory", "\(directory) is not a directory (create it, writable by wsgate only)")
        }
        guard access(directory, W_OK) == 0 else { throw self.fail(directoryNode, "\(key).directory", "\(directory) is not writable") }
        var settings = RecordSettings(directory: URL(fileURLWithPath: directory).standardizedFileURL.path)
        if let n = entries["max_file_bytes"] { settings.maxFileBytes = try self.size(n, "\(key).max_file_bytes") }
        if let n = entries["max_total_bytes"] { settings.maxTotalBytes = try self.size(n, "\(key).max_total_bytes") }
        if let n = entries["max_files"] { settings.maxFiles = try self.integer(n, "\(key).max_files", in: 1...1_000_000) }
        guard settings.maxFileBytes >= 4096 else { throw self.fail(entries["max_file_bytes"], "\(key).max_file_bytes", "must be at least 4KiB") }
        guard settings.maxTotalBytes >= settings.maxFileBytes else {
            throw self.fail(entries["max_total_bytes"] ?? node, "\(key).max_total_bytes", "must be at least max_file_bytes (\(settings.maxFileBytes))")
        }
        return settings
    }

    func backendURL(_ node: Node, _ key: String) throws(ConfigurationError) -> BackendURL {
        let text = try self.string(node, key)
        do {
            return try BackendURL(parsing: text)
        } catch {
            throw self.fail(node, key, error.description)
        }
    }

    /// `balance`, `health_check` and `passive_health` (the `limits` keys are read with the others).
    func pool(_ entries: [String: Node], backends: [BackendURL], _ key: String) throws(ConfigurationError) -> PoolSettings {
        var pool = PoolSettings()
        if let n = entries["balance"] { pool.balance = try self.balance(n, "\(key).balance") }
        if let n = entries["health_check"] {
            let check = try self.mapping(n, "\(key).health_check", allowed: ["type", "path", "interval", "timeout", "rise", "fall"])
            let byteStream = backends[0].isByteStream
            var kind: HealthCheckSettings.Kind = byteStream ? .tcp : .webSocket(path: nil)
            if let t = check["type"] {
                switch try self.string(t, "\(key).health_check.type") {
                case "tcp": kind = .tcp
                case "websocket":
                    guard !byteStream else { throw self.fail(t, "\(key).health_check.type", "websocket checks need ws:// or wss:// targets") }
                    kind = .webSocket(path: nil)
                case let other: throw self.fail(t, "\(key).health_check.type", "expected 'tcp' or 'websocket', got '\(other)'")
                }
            }
            if let p = check["path"] {
                guard case .webSocket = kind else { throw self.fail(p, "\(key).health_check.path", "only applies to websocket checks") }
                let path = try self.string(p, "\(key).health_check.path")
                guard path.hasPrefix("/") else { throw self.fail(p, "\(key).health_check.path", "must start with '/'") }
                kind = .webSocket(path: path)
            }
            var settings = HealthCheckSettings(kind: kind)
            if let m = check["interval"] { settings.interval = try self.positiveDuration(m, "\(key).health_check.interval") }
            if let m = check["timeout"] { settings.timeout = try self.positiveDuration(m, "\(key).health_check.timeout") }
            if let m = check["rise"] { settings.rise = try self.integer(m, "\(key).health_check.rise", in: 1...100) }
            if let m = check["fall"] { settings.fall = try self.integer(m, "\(key).health_check.fall", in: 1...100) }
            pool.healthCheck = settings
        }
        if let n = entries["passive_health"] {
            let passive = try self.mapping(n, "\(key).passive_health", allowed: ["failures", "eject_for", "max_eject_for"])
            if let m = passive["failures"] { pool.passiveHealth.failures = try self.integer(m, "\(key).passive_health.failures", in: 0...100) }
            if let m = passive["eject_for"] { pool.passiveHealth.ejectFor = try self.positiveDuration(m, "\(key).passive_health.eject_for") }
            if let m = passive["max_eject_for"] { pool.passiveHealth.maxEjectFor = try self.positiveDuration(m, "\(key).passive_health.max_eject_for") }
            if pool.passiveHealth.maxEjectFor < pool.passiveHealth.ejectFor {
                throw self.fail(n, "\(key).passive_health.max_eject_for", "is shorter than eject_for")
            }
        }
        return pool
    }

    /// `round_robin`, `least_connections`, `hash_client_ip`, `{hash_header: NAME}`, `{hash_query: NAME}`.
    func balance(_ node: Node, _ key: String) throws(ConfigurationError) -> BalancePolicy {
        let expected = "expected round_robin, least_connections, hash_client_ip, {hash_header: NAME} or {hash_query: NAME}"
        if case .mapping = node {
            let entries = try self.mapping(node, key, allowed: ["hash_header", "hash_query"])
            guard entries.count == 1, let (name, value) = entries.first else { throw self.fail(node, key, expected) }
            let text = try self.string(value, "\(key).\(name)")
            guard !text.isEmpty, HTTPTokens.isToken(text) || name == "hash_query" else { throw self.fail(value, "\(key).\(name)", "'\(text)' is not a header name") }
            return name == "hash_header" ? .hashHeader(text) : .hashQuery(text)
        }
        switch try self.string(node, key) {
        case "round_robin": return .roundRobin
        case "least_connections": return .leastConnections
        case "hash_client_ip": return .hashClientIP
        case let other: throw self.fail(node, key, "\(expected), got '\(other)'")
        }
    }
}

// MARK: Security settings

extension NodeReader {
    /// `limits: {max_connections, max_connections_per_ip, handshake_rate_per_ip, max_header_count}`.
    func connectionLimits(_ node: Node) throws(ConfigurationError) -> ConnectionLimits {
        let entries = try self.mapping(node, "limits", allowed: ["max_connections", "max_connections_per_ip", "handshake_rate_per_ip", "max_header_count"])
        var limits = ConnectionLimits()
        if let n = entries["max_connections"] { limits.maxConnections = try self.integer(n, "limits.max_connections", in: 1...10_000_000) }
        if let n = entries["max_connections_per_ip"] { limits.maxConnectionsPerIP = try self.integer(n, "limits.max_connections_per_ip", in: 1...10_000_000) }
        if let n = entries["handshake_rate_per_ip"] {
            let text = try self.string(n, "limits.handshake_rate_per_ip")
            let number = text.hasSuffix("/s") ? String(text.dropLast(2)) : text
            guard let rate = Double(number.trimmingWhitespace()), rate > 0, rate.isFinite else {
                throw self.fail(n, "limits.handshake_rate_per_ip", "expected handshakes per second, e.g. 20 or 0.5/s, got '\(text)'")
            }
            limits.handshakeRatePerIP = rate
        }
        if let n = entries["max_header_count"] { limits.maxHeaderCount = try self.integer(n, "limits.max_header_count", in: 8...1000) }
        return limits
    }

    /// A list of CIDRs or addresses.
    func networks(_ node: Node, _ key: String) throws(ConfigurationError) -> [IPNetwork] {
        var networks: [IPNetwork] = []
        for (index, item) in try self.sequence(node, key).enumerated() {
            let text = try self.string(item, "\(key)[\(index)]")
            guard let network = IPNetwork(parsing: text) else { throw self.fail(item, "\(key)[\(index)]", "'\(text)' is not an IP address or CIDR (10.0.0.0/8, fd00::/8)") }
            networks.append(network)
        }
        return networks
    }

    /// `any`, `same-origin`, or a list of origins and `*.domain` patterns.
    func origins(_ node: Node, _ key: String) throws(ConfigurationError) -> OriginPolicy {
        if case .scalar = node {
            let text = try self.string(node, key)
            switch text {
            case "any", "*": return .any
            case "same-origin": return .sameOrigin
            default: throw self.fail(node, key, "expected any, same-origin or a list of origins, got '\(text)'")
            }
        }
        var patterns: [String] = []
        for (index, item) in try self.sequence(node, key).enumerated() {
            let text = try self.string(item, "\(key)[\(index)]")
            let valid = text == "null" || ParsedOrigin(text) != nil || (text.range(of: "*.").map { TargetPattern.isHostName(text[$0.upperBound...]) } ?? false)
            guard valid else { throw self.fail(item, "\(key)[\(index)]", "'\(text)' is not an origin (https://host[:port]) or a *.domain pattern") }
            patterns.append(text)
        }
        guard !patterns.isEmpty else { throw self.fail(node, key, "an empty list would refuse every browser; use same-origin") }
        return .allowList(patterns)
    }

    /// One of `bearer_tokens_file`, `bearer_tokens_env`, `basic_htpasswd`, `jwt`, plus where tokens are looked for.
    func auth(_ node: Node, _ key: String) throws(ConfigurationError) -> AuthSettings {
        let entries = try self.mapping(node, key, allowed: ["bearer_tokens_file", "bearer_tokens_env", "basic_htpasswd", "jwt", "token_sources", "cookie", "query_parameter", "subprotocol_prefix"])
        let methods = ["bearer_tokens_file", "bearer_tokens_env", "basic_htpasswd", "jwt"].filter { entries[$0] != nil }
        guard methods.count == 1 else {
            throw self.fail(node, key, methods.isEmpty ? "needs one of bearer_tokens_file, bearer_tokens_env, basic_htpasswd, jwt" : "give only one of \(methods.joined(separator: ", "))")
        }
        var settings: AuthSettings
        if let n = entries["bearer_tokens_file"] {
            settings = AuthSettings(method: .bearerTokens(file: try self.readableFile(n, "\(key).bearer_tokens_file")))
        } else if let n = entries["bearer_tokens_env"] {
            settings = AuthSettings(method: .bearerTokensFromEnvironment(variable: try self.string(n, "\(key).bearer_tokens_env")))
        } else if let n = entries["basic_htpasswd"] {
            let file = try self.readableFile(n, "\(key).basic_htpasswd")
            do {
                _ = try Htpasswd(file: try String(contentsOfFile: file, encoding: .utf8))
            } catch {
                throw self.fail(n, "\(key).basic_htpasswd", "\(file): \(error)")
            }
            settings = AuthSettings(method: .basic(htpasswdFile: file))
            settings.sources.cookie = nil
            settings.sources.queryParameter = nil
            settings.sources.subprotocolPrefix = nil
        } else if let n = entries["jwt"] {
            settings = AuthSettings(method: .jwt(try self.jwt(n, "\(key).jwt")))
        } else {
            throw self.fail(node, key, "needs one of bearer_tokens_file, bearer_tokens_env, basic_htpasswd, jwt")  // the count above rules it out
        }
        if let n = entries["token_sources"] {
            var sources = TokenSources()
            sources.header = false
            sources.cookie = nil
            sources.queryParameter = nil
            sources.subprotocolPrefix = nil
            for (index, item) in try self.sequence(n, "\(key).token_sources").enumerated() {
                switch try self.string(item, "\(key).token_sources[\(index)]") {
                case "header": sources.header = true
                case "cookie": sources.cookie = TokenSources().cookie
                case "query": sources.queryParameter = TokenSources().queryParameter
                case "subprotocol": sources.subprotocolPrefix = TokenSources().subprotocolPrefix
                case let other: throw self.fail(item, "\(key).token_sources[\(index)]", "expected header, cookie, query or subprotocol, got '\(other)'")
                }
            }
            settings.sources = sources
        }
        if let n = entries["cookie"] { settings.sources.cookie = try self.string(n, "\(key).cookie") }
        if let n = entries["query_parameter"] { settings.sources.queryParameter = try self.string(n, "\(key).query_parameter") }
        if let n = entries["subprotocol_prefix"] {
            let prefix = try self.string(n, "\(key).subprotocol_prefix")
            guard !prefix.isEmpty, HTTPTokens.isToken(prefix) else { throw self.fail(n, "\(key).subprotocol_prefix", "must be a non-empty token, e.g. bearer.") }
            settings.sources.subprotocolPrefix = prefix
        }
        return settings
    }

    func jwt(_ node: Node, _ key: String) throws(ConfigurationError) -> JWTSettings {
        let entries = try self.mapping(node, key, allowed: ["hs256_secret_file", "public_keys", "jwks_file", "audience", "issuer", "leeway", "routes_claim", "target_claim", "require_exp"])
        var settings = JWTSettings()
        if let n = entries["hs256_secret_file"] { settings.hmacSecretFile = try self.readableFile(n, "\(key).hs256_secret_file") }
        if let n = entries["public_keys"] {
            for (index, item) in try self.sequence(n, "\(key).public_keys").enumerated() {
                settings.publicKeyFiles.append(try self.readableFile(item, "\(key).public_keys[\(index)]"))
            }
        }
        if let n = entries["jwks_file"] { settings.jwksFile = try self.readableFile(n, "\(key).jwks_file") }
        guard settings.hmacSecretFile != nil || !settings.publicKeyFiles.isEmpty || settings.jwksFile != nil else {
            throw self.fail(node, key, "needs keys: hs256_secret_file, public_keys or jwks_file")
        }
        if let n = entries["audience"] {
            if case .sequence = n {
                settings.audiences = try self.sequence(n, "\(key).audience").enumerated().map { (index, item) throws(ConfigurationError) in try self.string(item, "\(key).audience[\(index)]") }
            } else {
                settings.audiences = [try self.string(n, "\(key).audience")]
            }
        }
        if let n = entries["issuer"] { settings.issuer = try self.string(n, "\(key).issuer") }
        if let n = entries["leeway"] { settings.leeway = try self.duration(n, "\(key).leeway") }
        if let n = entries["routes_claim"] { settings.routesClaim = try self.string(n, "\(key).routes_claim") }
        if let n = entries["target_claim"] { settings.targetClaim = try self.string(n, "\(key).target_claim") }
        if let n = entries["require_exp"] { settings.requireExpiry = try self.bool(n, "\(key).require_exp") }
        return settings
    }

    /// `targets: {token_file | from_jwt, token_from, query_parameter, allowed}`.
    func targets(_ node: Node, _ key: String) throws(ConfigurationError) -> DynamicTargets {
        let entries = try self.mapping(node, key, allowed: ["token_file", "from_jwt", "token_from", "query_parameter", "allowed"])
        var targets = DynamicTargets()
        if let n = entries["token_file"] {
            let file = try self.readableFile(n, "\(key).token_file")
            do {
                _ = try TargetTokenFile.parse(try String(contentsOfFile: file, encoding: .utf8))
            } catch {
                throw self.fail(n, "\(key).token_file", "\(file): \(error)")
            }
            targets.tokenFile = file
        }
        if let n = entries["from_jwt"] { targets.fromJWT = try self.bool(n, "\(key).from_jwt") }
        guard (targets.tokenFile != nil) != targets.fromJWT else {
            throw self.fail(node, key, "needs exactly one of token_file or from_jwt: true")
        }
        if let n = entries["token_from"] {
            let text = try self.string(n, "\(key).token_from")
            guard let location = DynamicTargets.TokenLocation(rawValue: text) else { throw self.fail(n, "\(key).token_from", "expected query or host, got '\(text)'") }
            targets.tokenLocation = location
        }
        if let n = entries["query_parameter"] { targets.queryParameter = try self.string(n, "\(key).query_parameter") }
        guard let allowedNode = entries["allowed"] else {
            throw self.fail(node, "\(key).allowed", "missing: list the host:port patterns dynamic targets may reach (e.g. 127.0.0.1:5900-5999, 10.0.0.0/8:22)")
        }
        for (index, item) in try self.sequence(allowedNode, "\(key).allowed").enumerated() {
            let text = try self.string(item, "\(key).allowed[\(index)]")
            guard let pattern = TargetPattern(parsing: text) else {
                throw self.fail(item, "\(key).allowed[\(index)]", "'\(text)' is not HOST:PORTS (HOST: IP, CIDR, name or *.domain; PORTS: 22, 5900-5999 or *)")
            }
            targets.allowed.append(pattern)
        }
        guard !targets.allowed.isEmpty else { throw self.fail(allowedNode, "\(key).allowed", "an empty list would refuse every target") }
        return targets
    }
}
