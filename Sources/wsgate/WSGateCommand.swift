import ArgumentParser
import Foundation
import Logging
import Metrics
import Prometheus
import ServiceLifecycle
import WSGate

@main
struct WSGateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wsgate",
        abstract: "A WebSocket gateway: terminates client WebSockets and relays them to TCP or WebSocket backends chosen by path.",
        version: "0.1.0",
        subcommands: [Run.self, Check.self, Replay.self, Websockify.self],
        defaultSubcommand: Run.self
    )
}

/// Where the configuration comes from: a YAML file, or websockify-style flags. Every option also
/// reads an environment variable (flags win), for containers.
struct ConfigurationOptions: ParsableArguments {
    /// Used when neither a file nor `--listen`/`--route` is given, if it exists (the container image's path).
    static let defaultConfigFile = "/etc/wsgate/wsgate.yaml"

    @Option(name: .long, help: "YAML configuration file (env WSGATE_CONFIG; default \(Self.defaultConfigFile) when it exists and no --route is given).")
    var config: String?

    @Option(name: .long, help: "Address to listen on: HOST:PORT, [IPV6]:PORT or :PORT (repeatable; env WSGATE_LISTEN, comma-separated). With --config: replaces the file's listeners.")
    var listen: [String] = []

    @Option(name: .long, help: "Route /PATH=BACKEND-URL, e.g. /vnc=tcp://127.0.0.1:5900 or /chat=ws://127.0.0.1:9000/socket (repeatable; env WSGATE_ROUTE, comma-separated; without --config).")
    var route: [String] = []

    @Option(name: .long, help: "PEM certificate chain: makes every --listen address a TLS listener (with --key; env WSGATE_CERT).")
    var cert: String?

    @Option(name: .long, help: "PEM private key for --cert (env WSGATE_KEY).")
    var key: String?

    @Flag(name: .long, help: "Negotiate permessage-deflate with clients on every --route (default settings; per route in a file; env WSGATE_COMPRESSION=1).")
    var compression = false

    @Flag(name: .long, help: "Offer permessage-deflate to every ws:// and wss:// --route backend too (env WSGATE_BACKEND_COMPRESSION=1).")
    var backendCompression = false

    @Option(name: .long, help: "Origins (browser pages) allowed on every --route: an origin such as https://app.example.com, a *.example.com pattern, 'any', or 'same-origin' (the default). Repeatable; env WSGATE_ALLOW_ORIGIN, comma-separated.")
    var allowOrigin: [String] = []

    @Option(name: .long, help: "Subprotocol accepted on every --route, e.g. mqtt (repeatable, in order of preference; env WSGATE_SUBPROTOCOL, comma-separated). Clients offering none of them get 400. Without it, a tcp:// or unix: route answers binary when offered, else the client's first offer, and a ws:// route lets its backend choose.")
    var subprotocol: [String] = []

    /// The options with the environment filled in where no flag was given.
    func resolved(_ environment: [String: String]) -> ConfigurationOptions {
        func list(_ name: String) -> [String] {
            (environment[name] ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        func flag(_ name: String) -> Bool { ["1", "true", "yes", "on"].contains(environment[name]?.lowercased() ?? "") }
        var options = self
        if options.config == nil { options.config = environment["WSGATE_CONFIG"].flatMap { $0.isEmpty ? nil : $0 } }
        if options.listen.isEmpty { options.listen = list("WSGATE_LISTEN") }
        if options.route.isEmpty { options.route = list("WSGATE_ROUTE") }
        if options.cert == nil { options.cert = environment["WSGATE_CERT"] }
        if options.key == nil { options.key = environment["WSGATE_KEY"] }
        if !options.compression { options.compression = flag("WSGATE_COMPRESSION") }
        if !options.backendCompression { options.backendCompression = flag("WSGATE_BACKEND_COMPRESSION") }
        if options.allowOrigin.isEmpty { options.allowOrigin = list("WSGATE_ALLOW_ORIGIN") }
        if options.subprotocol.isEmpty { options.subprotocol = list("WSGATE_SUBPROTOCOL") }
        if options.config == nil, options.route.isEmpty, FileManager.default.fileExists(atPath: Self.defaultConfigFile) {
            options.config = Self.defaultConfigFile
        }
        return options
    }

    /// Loads the configuration; call on ``resolved(_:)`` options.
    func load() throws -> GatewayConfiguration {
        do {
            if let config {
                guard self.route.isEmpty, !self.compression, !self.backendCompression, self.allowOrigin.isEmpty, self.subprotocol.isEmpty else {
                    throw ValidationError("--route, --compression, --backend-compression, --allow-origin and --subprotocol build a configuration without a file: use them without --config (or put them in the file)")
                }
                var configuration = try ConfigurationLoader.load(file: config)
                if !self.listen.isEmpty {
                    configuration.listeners = try CommandLineConfiguration.listeners(self.listen, tls: try self.listenerTLS())
                } else if self.cert != nil || self.key != nil {
                    throw ValidationError("--cert/--key with --config apply to --listen addresses only; put TLS settings in the file")
                }
                return configuration
            }
            if self.listen.isEmpty && self.route.isEmpty {
                throw ValidationError("give --config FILE (or WSGATE_CONFIG, or a file at \(Self.defaultConfigFile)), or --listen ADDRESS and --route /PATH=URL")
            }
            var configuration = try CommandLineConfiguration.make(listen: self.listen, routes: self.route, tls: try self.listenerTLS(), origins: self.allowOrigin)
            if let bad = self.subprotocol.first(where: { !HTTPTokens.isToken($0) }) {
                throw ValidationError("--subprotocol '\(bad)' is not a valid subprotocol token")
            }
            for index in configuration.routes.indices {
                configuration.routes[index].compression.enabled = self.compression
                if !self.subprotocol.isEmpty { configuration.routes[index].subprotocols = self.subprotocol }
                if case .webSocket = configuration.routes[index].backend { configuration.routes[index].backendCompression = self.backendCompression }
            }
            return configuration
        }
    }

    private func listenerTLS() throws -> ListenerTLS? {
        switch (self.cert, self.key) {
        case (let cert?, let key?): return ListenerTLS(certificateFile: cert, keyFile: key)
        case (nil, nil): return nil
        default: throw ValidationError("--cert and --key go together")
        }
    }
}

/// How log lines are written.
enum LogFormat: String, ExpressibleByArgument, CaseIterable {
    /// Human-readable lines (swift-log's stream handler).
    case text
    /// One JSON object per line, for container log collectors.
    case json
}

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the gateway (the default command).")

    @OptionGroup var source: ConfigurationOptions

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical (env WSGATE_LOG_LEVEL; default info).")
    var logLevel: Logger.Level?

    @Option(name: .long, help: "Log format: text or json (env WSGATE_LOG_FORMAT; default text).")
    var logFormat: LogFormat?

    @Option(name: .long, help: "Event-loop threads (env WSGATE_THREADS; default: one per CPU core, or server.threads from the file).")
    var threads: Int?

    @Option(name: .long, help: "Admin listener (/metrics, /healthz, /readyz) address, e.g. 127.0.0.1:9090 (env WSGATE_ADMIN; overrides the file's admin.address).")
    var admin: String?

    @Option(name: .long, help: "Seconds sessions get to close after SIGTERM before they are cut (env WSGATE_DRAIN_TIMEOUT; overrides server.drain_timeout; default 10).")
    var drainTimeout: Double?

    @Option(name: .long, help: "Seconds a client has to send a complete request head (env WSGATE_HANDSHAKE_TIMEOUT; overrides server.handshake_timeout; default 10).")
    var handshakeTimeout: Double?

    @Option(name: .long, help: "Seconds between checks of the configuration file and certificates for changes; 0 turns watching off (SIGHUP still reloads). Env WSGATE_WATCH_INTERVAL; default 2.")
    var watchInterval: Double?

    func run() async throws {
        SignalMask.unblockLifecycleSignals()
        let environment = ProcessInfo.processInfo.environment
        func parsed<T: ExpressibleByArgument>(_ flag: T?, _ name: String) throws -> T? {
            if let flag { return flag }
            guard let text = environment[name], !text.isEmpty else { return nil }
            guard let value = T(argument: text) else { throw ValidationError("\(name)=\(text) is not a valid value") }
            return value
        }
        let source = self.source.resolved(environment)
        let level = try parsed(self.logLevel, "WSGATE_LOG_LEVEL") ?? .info
        let format = try parsed(self.logFormat, "WSGATE_LOG_FORMAT") ?? .text
        let threads = try parsed(self.threads, "WSGATE_THREADS")
        let adminAddress = try parsed(self.admin, "WSGATE_ADMIN")
        let drainTimeout = try parsed(self.drainTimeout, "WSGATE_DRAIN_TIMEOUT")
        let handshakeTimeout = try parsed(self.handshakeTimeout, "WSGATE_HANDSHAKE_TIMEOUT")
        let watchInterval = try parsed(self.watchInterval, "WSGATE_WATCH_INTERVAL") ?? 2
        if let threads, threads <= 0 { throw ValidationError("--threads must be at least 1") }
        if let drainTimeout, drainTimeout <= 0 { throw ValidationError("--drain-timeout must be positive") }
        if let handshakeTimeout, !(handshakeTimeout > 0 && handshakeTimeout <= 3600) { throw ValidationError("--handshake-timeout must be from above 0 to 3600 seconds") }
        if watchInterval < 0 { throw ValidationError("--watch-interval must be 0 (off) or positive") }
        let adminListen = try adminAddress.map { text -> ListenAddress in
            guard let address = ListenAddress(parsing: text) else { throw ValidationError("--admin: " + ListenAddress.invalid(text)) }
            return address
        }
        /// The file (or flags) plus the command line's overrides; a reload applies them again.
        let load: @Sendable () throws -> GatewayConfiguration = {
            var configuration = try source.load()
            if let threads { configuration.server.threads = threads }
            // Only the address: the file's token_file still protects it.
            if let adminListen { configuration.admin = AdminConfiguration(address: adminListen, tokenFile: configuration.admin?.tokenFile) }
            if let drainTimeout { configuration.server.drainTimeout = .nanoseconds(Int64(drainTimeout * 1e9)) }
            if let handshakeTimeout { configuration.server.handshakeTimeout = .nanoseconds(Int64(handshakeTimeout * 1e9)) }
            return configuration
        }
        let configuration: GatewayConfiguration
        do {
            configuration = try load()
        } catch let error as ConfigurationError {
            printError("wsgate: invalid configuration: \(error)")
            throw ExitCode(2)
        }

        LoggingSystem.bootstrap { label in
            switch format {
            case .text:
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            case .json:
                var handler = JSONLogHandler(label: label)
                handler.logLevel = level
                return handler
            }
        }
        let logger = Logger(label: "wsgate")
        logger.debug("open-file limit: \(FileDescriptorLimit.raiseToHardLimit())")
        // swift-metrics into one Prometheus registry, rendered on the admin listener's /metrics.
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        let server = GatewayServer(configuration: configuration, logger: logger, metricsText: { registry.emitToString() })
        // A configuration file is reloaded on SIGHUP and watched; one built from flags is not.
        let reloadSource = source.config.map { file in
            GatewayService.ReloadSource(file: file, watchInterval: watchInterval > 0 ? .milliseconds(Int64(watchInterval * 1000)) : nil, load: load)
        }
        let group = ServiceGroup(configuration: .init(
            services: [.init(service: GatewayService(server: server, reloadSource: reloadSource))],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger
        ))
        do {
            try await group.run()
        } catch {
            logger.critical("\(error)")
            throw ExitCode(1)
        }
    }
}

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Validate a configuration file and print the routing table, without starting.")

    @Argument(help: "The YAML configuration file.")
    var file: String

    func run() throws {
        let configuration: GatewayConfiguration
        do {
            configuration = try ConfigurationLoader.load(file: self.file)
        } catch {
            printError("wsgate: invalid configuration: \(error)")
            throw ExitCode(2)
        }
        print("\(self.file): OK")
        for listener in configuration.listeners {
            print("listen \(listener)")
        }
        if let admin = configuration.admin {
            print("admin \(admin.address) (/metrics, /status, /sessions, /healthz, /readyz)\(admin.tokenFile.map { ", token_file=\($0)" } ?? "")")
            for warning in SecurityWarnings.warnings(for: admin) {
                print("warning: \(warning)")
            }
        }
        print(Self.settings("server:", ConfigurationSummary.server(configuration.server)))
        // The effective table: the order routes are tried in (most specific first; see README).
        let table = RouteTable(configuration.routes)
        print("routes, in the order they are tried (first match wins):")
        for entry in table.evaluationOrder {
            let route = entry.configuration
            let host = route.host.map { "host \($0) " } ?? ""
            print("route \(entry.index): \(host)\(route.match.rawValue) \(route.path) -> \(route.backendSummary)")
            print(Self.settings("  ", ConfigurationSummary.route(route)))
            for warning in SecurityWarnings.warnings(for: route) {
                print("  warning: \(warning)")
            }
        }
        for warning in table.shadowWarnings {
            print("warning: \(warning)")
        }
        print(Self.settings("limits:", ConfigurationSummary.limits(configuration.server.limits)))
    }

    /// `name=value` items after `label`, wrapped into indented lines of about 100 columns.
    static func settings(_ label: String, _ items: [String]) -> String {
        var lines = [label]
        for item in items {
            if let last = lines.last, last.count + item.count < 100 || last == label {
                lines[lines.count - 1] = last + (last.hasSuffix(" ") ? "" : " ") + item
            } else {
                lines.append("    " + item)
            }
        }
        return lines.joined(separator: "\n")
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

func printError(_ message: String) {
    var stderr = StandardError()
    print(message, to: &stderr)
}

struct StandardError: TextOutputStream {
    mutating func write(_ string: String) {
        FileHandleStandardError.write(string)
    }
}
