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

    public static func parse(yaml: String, file: String? = nil) throws(ConfigurationError) -> GatewayConfiguration {
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
        let top = try self.mapping(root, nil, allowed: ["listeners", "routes", "server"])
        var server = ServerSettings()
        if let node = top["server"] { server = try self.server(node) }

        guard let listenersNode = top["listeners"] else { throw self.fail(root, "listeners", "missing: at least one listener is needed") }
        var listeners: [ListenerConfiguration] = []
        for (index, node) in try self.sequence(listenersNode, "listeners").enumerated() {
            let key = "listeners[\(index)]"
            let entries = try self.mapping(node, key, allowed: ["address", "tls"])
            guard let addressNode = entries["address"] else { throw self.fail(node, "\(key).address", "missing") }
            let text = try self.string(addressNode, "\(key).address")
            guard let address = ListenAddress(parsing: text) else {
                throw self.fail(addressNode, "\(key).address", "invalid address '\(text)' (use HOST:PORT, [IPV6]:PORT or :PORT)")
            }
            var listener = ListenerConfiguration(address: address)
            if let tlsNode = entries["tls"] {
                let tls = try self.mapping(tlsNode, "\(key).tls", allowed: ["certificate", "key"])
                guard let certificate = tls["certificate"] else { throw self.fail(tlsNode, "\(key).tls.certificate", "missing") }
                guard let keyFile = tls["key"] else { throw self.fail(tlsNode, "\(key).tls.key", "missing") }
                listener.tls = ListenerTLS(
                    certificateFile: try self.readableFile(certificate, "\(key).tls.certificate"),
                    keyFile: try self.readableFile(keyFile, "\(key).tls.key")
                )
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
        return GatewayConfiguration(listeners: listeners, routes: routes, server: server)
    }

    func server(_ node: Node) throws(ConfigurationError) -> ServerSettings {
        let entries = try self.mapping(node, "server", allowed: ["handshake_timeout", "max_request_head_bytes", "close_timeout", "threads", "http2"])
        var server = ServerSettings()
        if let n = entries["handshake_timeout"] {
            server.handshakeTimeout = try self.positiveDuration(n, "server.handshake_timeout")
        }
        if let n = entries["close_timeout"] {
            server.closeTimeout = try self.positiveDuration(n, "server.close_timeout")
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
        let entries = try self.mapping(node, key, allowed: ["path", "match", "backend", "backend_tls", "subprotocols", "message_type", "limits", "compression", "backend_compression"])
        guard let pathNode = entries["path"] else { throw self.fail(node, "\(key).path", "missing") }
        let path = try self.string(pathNode, "\(key).path")
        guard path.hasPrefix("/") else { throw self.fail(pathNode, "\(key).path", "must start with '/'") }
        guard !path.contains("?"), !path.contains("#") else { throw self.fail(pathNode, "\(key).path", "must not contain a query or fragment") }

        guard let backendNode = entries["backend"] else { throw self.fail(node, "\(key).backend", "missing") }
        let backendText = try self.string(backendNode, "\(key).backend")
        let backend: BackendURL
        do {
            backend = try BackendURL(parsing: backendText)
        } catch {
            throw self.fail(backendNode, "\(key).backend", error.description)
        }

        var route = RouteConfiguration(path: path, backend: backend)
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
            let limits = try self.mapping(n, "\(key).limits", allowed: ["max_message_bytes", "idle_timeout", "connect_timeout"])
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
        }
        return route
    }
}
