import ArgumentParser
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
        subcommands: [Run.self, Check.self],
        defaultSubcommand: Run.self
    )
}

/// Where the configuration comes from: a YAML file, or websockify-style flags.
struct ConfigurationOptions: ParsableArguments {
    @Option(name: .long, help: "YAML configuration file.")
    var config: String?

    @Option(name: .long, help: "Address to listen on: HOST:PORT, [IPV6]:PORT or :PORT (repeatable; without --config).")
    var listen: [String] = []

    @Option(name: .long, help: "Route /PATH=BACKEND-URL, e.g. /vnc=tcp://127.0.0.1:5900 or /chat=ws://127.0.0.1:9000/socket (repeatable; without --config).")
    var route: [String] = []

    @Option(name: .long, help: "PEM certificate chain: makes every --listen address a TLS listener (with --key).")
    var cert: String?

    @Option(name: .long, help: "PEM private key for --cert.")
    var key: String?

    @Flag(name: .long, help: "Negotiate permessage-deflate with clients on every --route (default settings; per route in a file).")
    var compression = false

    @Flag(name: .long, help: "Offer permessage-deflate to every ws:// and wss:// --route backend too.")
    var backendCompression = false

    @Option(name: .long, help: "Origins (browser pages) allowed on every --route: an origin such as https://app.example.com, a *.example.com pattern, 'any', or 'same-origin' (the default). Repeatable.")
    var allowOrigin: [String] = []

    func load() throws -> GatewayConfiguration {
        do {
            if let config {
                guard self.listen.isEmpty, self.route.isEmpty, self.cert == nil, self.key == nil, !self.compression, !self.backendCompression, self.allowOrigin.isEmpty else {
                    throw ValidationError("use either --config FILE or --listen/--route/--cert/--key/--compression/--allow-origin, not both")
                }
                return try ConfigurationLoader.load(file: config)
            }
            if self.listen.isEmpty && self.route.isEmpty {
                throw ValidationError("give --config FILE, or --listen ADDRESS and --route /PATH=URL")
            }
            var tls: ListenerTLS?
            switch (self.cert, self.key) {
            case (let cert?, let key?): tls = ListenerTLS(certificateFile: cert, keyFile: key)
            case (nil, nil): tls = nil
            default: throw ValidationError("--cert and --key go together")
            }
            var configuration = try CommandLineConfiguration.make(listen: self.listen, routes: self.route, tls: tls, origins: self.allowOrigin)
            for index in configuration.routes.indices {
                configuration.routes[index].compression.enabled = self.compression
                if case .webSocket = configuration.routes[index].backend { configuration.routes[index].backendCompression = self.backendCompression }
            }
            return configuration
        } catch let error as ConfigurationError {
            printError("wsgate: invalid configuration: \(error)")
            throw ExitCode(2)
        }
    }
}

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the gateway (the default command).")

    @OptionGroup var source: ConfigurationOptions

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    @Option(name: .long, help: "Event-loop threads (default: one per CPU core, or server.threads from the file).")
    var threads: Int?

    func run() async throws {
        var configuration = try self.source.load()
        if let threads = self.threads {
            guard threads > 0 else { throw ValidationError("--threads must be at least 1") }
            configuration.server.threads = threads
        }
        let level = self.logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "wsgate")
        logger.debug("open-file limit: \(FileDescriptorLimit.raiseToHardLimit())")
        // swift-metrics into one Prometheus registry, rendered on the admin listener's /metrics.
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        let server = GatewayServer(configuration: configuration, logger: logger, metricsText: { registry.emitToString() })
        let group = ServiceGroup(configuration: .init(
            services: [.init(service: GatewayService(server: server))],
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
        for (index, route) in configuration.routes.enumerated() {
            let subprotocols = route.subprotocols.map { " subprotocols=\($0.joined(separator: ","))" } ?? ""
            let idle = route.limits.idleTimeout.map { "\($0.nanoseconds / 1_000_000_000)s" } ?? "off"
            let c = route.compression
            let compression = c.enabled
                ? " compression=level:\(c.level),window_bits:\(c.windowBits),memory_level:\(c.memoryLevel),client_window_bits:\(c.clientWindowBits),min_size:\(c.minimumMessageBytes)\(c.serverNoContextTakeover ? ",server_no_context_takeover" : "")"
                : ""
            let backendCompression = route.backendCompression ? " backend_compression=on" : ""
            let backend = route.targets.map { "dynamic(\($0.fromJWT ? "jwt claim" : "token file \($0.tokenFile ?? "")"), allowed: \($0.allowed.map(\.description).joined(separator: ",")))" } ?? "\(route.backend)"
            let maxFrame = (route.limits.maxFrameBytes.map { " max_frame_bytes=\($0)" } ?? "") + " ping_interval=" + (route.limits.pingInterval.map { $0.prettyDescription } ?? "off")
            print("route \(index): \(route.match.rawValue) \(route.path) -> \(backend)\(subprotocols) max_message_bytes=\(route.limits.maxMessageBytes)\(maxFrame) idle_timeout=\(idle) connect_timeout=\(route.limits.connectTimeout.nanoseconds / 1_000_000)ms\(compression)\(backendCompression) origins=\(route.origins) auth=\(Self.describe(route.auth))\(route.clientSubjects.map { " client_subjects=\($0.joined(separator: ";"))" } ?? "")")
            for warning in SecurityWarnings.warnings(for: route) {
                print("  warning: \(warning)")
            }
        }
        let limits = configuration.server.limits
        print("limits: max_connections=\(limits.maxConnections.map(String.init) ?? "auto (open-file limit / 2)") max_connections_per_ip=\(limits.maxConnectionsPerIP.map(String.init) ?? "off") handshake_rate_per_ip=\(limits.handshakeRatePerIP.map { "\($0)/s" } ?? "off") max_header_count=\(limits.maxHeaderCount)")
    }

    static func describe(_ auth: AuthSettings?) -> String {
        guard let auth else { return "none" }
        let sources = [auth.sources.header ? "header" : nil, auth.sources.cookie.map { "cookie \($0)" }, auth.sources.queryParameter.map { "query \($0)" },
                       auth.sources.subprotocolPrefix.map { "subprotocol \($0)*" }].compactMap { $0 }.joined(separator: ",")
        switch auth.method {
        case .bearerTokens(let file): return "bearer(file \(file); from \(sources))"
        case .bearerTokensFromEnvironment(let variable): return "bearer(env \(variable); from \(sources))"
        case .basic(let file): return "basic(htpasswd \(file))"
        case .jwt(let jwt):
            let keys = [jwt.hmacSecretFile.map { _ in "HS256" }, jwt.publicKeyFiles.isEmpty ? nil : "\(jwt.publicKeyFiles.count) public key(s)", jwt.jwksFile.map { _ in "JWKS" }].compactMap { $0 }.joined(separator: "+")
            return "jwt(\(keys); aud \(jwt.audiences?.joined(separator: ",") ?? "any"); iss \(jwt.issuer ?? "any"); from \(sources))"
        }
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
