import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServiceLifecycle
import UnixSignals

/// The gateway: its listeners and the event loops every connection runs on.
public final class GatewayServer: Sendable {
    public let configuration: GatewayConfiguration
    private let gateway: GatewayContext
    private let group: EventLoopGroup
    private let ownsGroup: Bool
    private let listeners = NIOLockedValueBox<[Channel]>([])
    private let tlsContexts = NIOLockedValueBox<[ServerTLSContext]>([])
    private let admin = NIOLockedValueBox<AdminServer?>(nil)
    private let metricsText: (@Sendable () -> String)?

    /// - Parameters:
    ///   - group: event loops to run on; by default the gateway makes its own with
    ///     `server.threads` threads (one per core when unset).
    ///   - metricsText: renders the metrics for the admin listener's `/metrics` (the `wsgate`
    ///     command passes its Prometheus registry); nil answers 404 there.
    public init(configuration: GatewayConfiguration, logger: Logger, group: EventLoopGroup? = nil, metricsText: (@Sendable () -> String)? = nil) {
        self.configuration = configuration
        self.metricsText = metricsText
        self.gateway = GatewayContext(configuration: configuration, logger: logger)
        if let group {
            self.group = group
            self.ownsGroup = false
        } else {
            self.group = MultiThreadedEventLoopGroup(numberOfThreads: configuration.server.threads ?? System.coreCount)
            self.ownsGroup = true
        }
    }

    /// Opens every listener; returns their bound addresses (port 0 becomes the real port).
    @discardableResult
    public func start() async throws -> [SocketAddress] {
        let gateway = self.gateway
        try gateway.backendTLS.prepare(gateway.routes)
        try await gateway.guards.prepare(gateway.routes, logger: gateway.logger)
        var bound: [Channel] = []
        var tlsContexts: [ServerTLSContext] = []
        do {
            for listener in self.configuration.listeners {
                let tls = try listener.tls.map { try ServerTLSContext(files: $0) }
                if let tls { tlsContexts.append(tls) }
                let channel = try await self.bootstrap(tls: tls, proxyProtocolFrom: listener.proxyProtocolFrom).bind(host: listener.address.host, port: listener.address.port).get()
                bound.append(channel)
                gateway.logger.info("listening", metadata: ["address": "\(channel.localAddress?.loggable ?? listener.address.description)", "tls": "\(tls != nil)"])
            }
        } catch {
            for channel in bound { try? await channel.close() }
            throw ListenError(address: self.configuration.listeners[bound.count].address, underlying: error)
        }
        self.listeners.withLockedValue { $0.append(contentsOf: bound) }
        self.tlsContexts.withLockedValue { $0 = tlsContexts }
        if let admin = self.configuration.admin {
            let readiness = gateway.readiness
            do {
                let server = try await AdminServer.start(address: admin.address, group: self.group, logger: gateway.logger,
                                                         ready: { readiness.withLockedValue { $0 } }, metrics: self.metricsText)
                self.admin.withLockedValue { $0 = server }
            } catch {
                for channel in bound { try? await channel.close() }
                throw ListenError(address: admin.address, underlying: error)
            }
        }
        gateway.readiness.withLockedValue { $0 = true }
        GatewayMetrics.draining(false)
        for route in gateway.routes.routes {
            let config = route.configuration
            let backend = config.targets.map { "dynamic, allowed: \($0.allowed.map(\.description).joined(separator: ", "))" } ?? "\(config.backend)"
            gateway.logger.info("route", metadata: ["path": "\(config.path)", "match": "\(config.match.rawValue)", "backend": "\(backend)", "origins": "\(config.origins)"])
            for warning in SecurityWarnings.warnings(for: config) {
                gateway.logger.warning("route \(config.path): \(warning)")
            }
        }
        return bound.compactMap(\.localAddress)
    }

    private func bootstrap(tls: ServerTLSContext?, proxyProtocolFrom trusted: [IPNetwork]?) -> ServerBootstrap {
        let gateway = self.gateway
        return ServerBootstrap(group: self.group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.recvAllocator, value: ReceiveBuffers())
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let client = ClientConnection(address: channel.remoteAddress, localAddress: channel.localAddress, secure: tls != nil)
                    if let trusted, trusted.contains(ip: channel.remoteAddress?.ipAddress) {
                        // The connection is only counted and set up once the proxy has named the client.
                        try channel.pipeline.syncOperations.addHandler(ProxyProtocolHandler(gateway: gateway, client: client) { channel in
                            try Self.setUp(channel, client: client, tls: tls, gateway: gateway)
                        })
                    } else {
                        try Self.setUp(channel, client: client, tls: tls, gateway: gateway)
                    }
                }
            }
    }

    /// Counts the connection against the limits (or answers it with 429/503), then builds its pipeline.
    private static func setUp(_ channel: Channel, client: ClientConnection, tls: ServerTLSContext?, gateway: GatewayContext) throws {
        let address = client.address
        if let refusal = gateway.clients.open(address) {
            gateway.logger.info("refused connection: \(refusal.reason)", metadata: ["client": "\(client.loggable)", "status": "\(refusal.status)"])
            RefusalMetrics.count(refusal.label, status: refusal.status)
            // A TLS client could not read a plain answer: it is just closed.
            if tls != nil {
                channel.close(promise: nil)
            } else {
                try channel.pipeline.syncOperations.addHandler(ConnectionRefuser(status: refusal.status, reason: refusal.reason, retryAfter: 1))
            }
            return
        }
        channel.closeFuture.whenComplete { _ in gateway.clients.close(address) }
        if let tls {
            try TLSPipeline.configure(channel, context: tls.context, gateway: gateway, client: client)
        } else {
            try channel.pipeline.syncOperations.addHandler(ProtocolDetector(gateway: gateway, client: client))
        }
    }

    /// Re-reads every TLS listener's certificate and key (SIGHUP). A file that fails to load leaves
    /// that listener on its old certificate; live connections are never touched.
    public func reloadCertificates() {
        for tls in self.tlsContexts.withLockedValue({ $0 }) {
            do {
                try tls.reload()
                self.gateway.logger.info("reloaded TLS certificate", metadata: ["certificate": "\(tls.files.certificateFile)"])
            } catch {
                self.gateway.logger.error("TLS certificate reload failed, keeping the old one: \(error)", metadata: ["certificate": "\(tls.files.certificateFile)"])
            }
        }
    }

    public var localAddresses: [SocketAddress] {
        self.listeners.withLockedValue { $0.compactMap(\.localAddress) }
    }

    /// Where the admin listener is bound, if there is one.
    public var adminAddress: SocketAddress? {
        self.admin.withLockedValue { $0?.localAddress }
    }

    /// Stops accepting; live sessions are not touched.
    public func stopListening() async {
        let channels = self.listeners.withLockedValue { channels in
            defer { channels.removeAll() }
            return channels
        }
        for channel in channels { try? await channel.close() }
    }

    /// Sessions currently relaying, plus open HTTP/2 connections (each ends politely on shutdown).
    public var activeSessions: Int { self.gateway.sessions.count }

    /// Stops accepting, closes every session with 1001 Going Away and waits for their closing
    /// handshakes (up to `close_timeout` and a second); then, if the gateway made its event loops,
    /// shuts them down, cutting whatever is left.
    public func shutdown() async {
        self.gateway.readiness.withLockedValue { $0 = false }
        GatewayMetrics.draining(true)
        await self.stopListening()
        let sessions = self.gateway.sessions
        let live = sessions.count
        if live > 0 {
            sessions.goAwayAll(reason: "server shutting down")
            let deadline = NIODeadline.now() + self.gateway.settings.closeTimeout + .seconds(1)
            while sessions.count > 0 && NIODeadline.now() < deadline {
                try? await Task.sleep(nanoseconds: 20_000_000)
            }
            self.gateway.logger.info("shutdown: closed \(live - sessions.count) sessions (1001) and HTTP/2 connections (GOAWAY), cut \(sessions.count)")
        }
        if let admin = self.admin.withLockedValue({ $0 }) { await admin.stop() }
        if self.ownsGroup { try? await self.group.shutdownGracefully() }
    }
}

public struct ListenError: Error, CustomStringConvertible {
    public var address: ListenAddress
    public var underlying: Error
    public var description: String { "cannot listen on \(self.address): \(self.underlying)" }
}

/// Runs the gateway under swift-service-lifecycle: listens until a shutdown signal, then stops accepting.
public struct GatewayService: Service {
    public let server: GatewayServer

    public init(server: GatewayServer) { self.server = server }

    public func run() async throws {
        try await self.server.start()
        let server = self.server
        // SIGHUP reloads certificates until shutdown begins.
        let reloads = Task {
            for await _ in await UnixSignalsSequence(trapping: .sighup) {
                server.reloadCertificates()
            }
        }
        try? await gracefulShutdown()
        reloads.cancel()
        await self.server.shutdown()
    }
}
