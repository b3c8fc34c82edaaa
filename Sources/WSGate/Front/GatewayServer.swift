#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// The gateway: its listeners and the event loops every connection runs on.
public final class GatewayServer: Sendable {
    /// A bound listener and what it was opened from, so a reload can tell which to keep.
    struct OpenListener: Sendable {
        var configuration: ListenerConfiguration
        var channel: Channel
        var tls: ServerTLSContext?
    }

    let gateway: GatewayContext
    let group: EventLoopGroup
    private let ownsGroup: Bool
    /// The configuration in force: the one given at start, then each accepted reload's
    /// listeners and routes (server and admin settings keep their start values).
    let current: NIOLockedValueBox<GatewayConfiguration>
    let listeners = NIOLockedValueBox<[OpenListener]>([])
    private let admin = NIOLockedValueBox<AdminServer?>(nil)
    private let metricsText: (@Sendable () -> String)?
    /// Set by ``cut()``: the drain stops waiting.
    private let cutRequested = NIOLockedValueBox(false)

    /// - Parameters:
    ///   - group: event loops to run on; by default the gateway makes its own with
    ///     `server.threads` threads (one per core when unset).
    ///   - metricsText: renders the metrics for the admin listener's `/metrics` (the `wsgate`
    ///     command passes its Prometheus registry); nil answers 404 there.
    public init(configuration: GatewayConfiguration, logger: Logger, group: EventLoopGroup? = nil, metricsText: (@Sendable () -> String)? = nil) {
        self.current = NIOLockedValueBox(configuration)
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

    /// The configuration in force (after reloads, their listeners and routes).
    public var configuration: GatewayConfiguration { self.current.withLockedValue { $0 } }

    /// Opens every listener; returns their bound addresses (port 0 becomes the real port).
    @discardableResult
    public func start() async throws -> [SocketAddress] {
        let gateway = self.gateway
        let configuration = self.configuration
        gateway.routing = try await Routing.make(configuration.routes, logger: gateway.logger, passwordChecks: gateway.passwordChecks, targets: gateway.targets)
        gateway.targets.apply(gateway.routing, group: self.group, logger: gateway.logger)
        var opened: [OpenListener] = []
        for listener in configuration.listeners {
            do {
                opened.append(try await self.open(listener))
            } catch {
                for listener in opened { try? await listener.channel.close() }
                throw ListenError(address: listener.address, underlying: error)
            }
        }
        self.listeners.withLockedValue { $0 = opened }
        if let admin = configuration.admin {
            for warning in SecurityWarnings.warnings(for: admin) {
                gateway.logger.warning("\(warning)")
            }
            let readiness = gateway.readiness
            do {
                let server = try await AdminServer.start(address: admin.address, group: self.group, logger: gateway.logger,
                                                         ready: { readiness.withLockedValue { $0 } }, metrics: self.metricsText,
                                                         status: { BackendStatus(routing: gateway.routing, ready: readiness.withLockedValue { $0 }).json() },
                                                         sessions: gateway.sessions, drains: gateway.connector.drains, tokenFile: admin.tokenFile)
                self.admin.withLockedValue { $0 = server }
            } catch {
                for listener in opened { try? await listener.channel.close() }
                throw ListenError(address: admin.address, underlying: error)
            }
        }
        gateway.readiness.withLockedValue { $0 = true }
        GatewayMetrics.draining(false)
        self.logRoutes(gateway.routing)
        return opened.compactMap(\.channel.localAddress)
    }

    /// Binds one listener (its certificate read now).
    func open(_ listener: ListenerConfiguration) async throws -> OpenListener {
        let tls = try listener.tls.map { try ServerTLSContext(files: $0, logger: self.gateway.logger) }
        let channel = try await self.bootstrap(tls: tls, proxyProtocolFrom: listener.proxyProtocolFrom)
            .serverChannelOption(ChannelOptions.socketOption(NIOBSDSocket.Option(rawValue: SO_REUSEPORT)), value: listener.reusePort ? 1 : 0)
            .bind(host: listener.address.host, port: listener.address.port).get()
        self.gateway.logger.info("listening", metadata: ["address": "\(channel.localAddress?.loggable ?? listener.address.description)", "tls": "\(tls != nil)"])
        return OpenListener(configuration: listener, channel: channel, tls: tls)
    }

    func logRoutes(_ routing: Routing) {
        for route in routing.table.evaluationOrder {
            let config = route.configuration
            var metadata: Logger.Metadata = ["path": "\(config.path)", "match": "\(config.match.rawValue)", "backend": "\(config.backendSummary)", "origins": "\(config.origins)"]
            if let host = config.host { metadata["host"] = "\(host)" }
            self.gateway.logger.info("route", metadata: metadata)
            for warning in SecurityWarnings.warnings(for: config) {
                self.gateway.logger.warning("route \(config.path): \(warning)")
            }
        }
        for warning in routing.table.shadowWarnings {
            self.gateway.logger.warning("\(warning)")
        }
    }

    private func bootstrap(tls: ServerTLSContext?, proxyProtocolFrom trusted: [IPNetwork]?) -> ServerBootstrap {
        let gateway = self.gateway
        let bootstrap = ServerBootstrap(group: self.group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.recvAllocator, value: ReceiveBuffers())
        return SocketKeepalive.apply(gateway.settings.keepalive, to: bootstrap)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let client = ClientConnection(address: channel.remoteAddress, localAddress: channel.localAddress, secure: tls != nil,
                                                  handshakeDeadline: channel.eventLoop.now + gateway.settings.handshakeTimeout)
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
        let slot: ClientSlot
        switch ClientSlot.take(gateway.clients, for: client.address) {
        case .success(let taken):
            slot = taken
        case .failure(let refusal):
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
        client.slot = slot
        channel.closeFuture.whenComplete { _ in slot.release() }
        if let tls {
            try TLSPipeline.configure(channel, context: tls.context, gateway: gateway, client: client)
        } else {
            try channel.pipeline.syncOperations.addHandler(ProtocolDetector(gateway: gateway, client: client))
        }
    }

    /// Re-reads every TLS listener's certificate and key (SIGHUP). A file that fails to load leaves
    /// that listener on its old certificate; live connections are never touched.
    public func reloadCertificates() {
        for tls in self.listeners.withLockedValue({ $0.compactMap(\.tls) }) {
            do {
                try tls.reload()
                self.gateway.logger.info("reloaded TLS certificate", metadata: ["certificate": "\(tls.files.certificateFile)"])
            } catch {
                self.gateway.logger.error("TLS certificate reload failed, keeping the old one: \(error)", metadata: ["certificate": "\(tls.files.certificateFile)"])
            }
        }
    }

    public var localAddresses: [SocketAddress] {
        self.listeners.withLockedValue { $0.compactMap(\.channel.localAddress) }
    }

    /// Where the admin listener is bound, if there is one.
    public var adminAddress: SocketAddress? {
        self.admin.withLockedValue { $0?.localAddress }
    }

    /// Stops accepting; live sessions are not touched.
    public func stopListening() async {
        let listeners = self.listeners.withLockedValue { listeners in
            defer { listeners.removeAll() }
            return listeners
        }
        for listener in listeners { try? await listener.channel.close() }
    }

    /// Sessions currently relaying, plus open HTTP/2 connections (each ends politely on shutdown).
    public var activeSessions: Int { self.gateway.sessions.count }

    /// Held and shared sessions' service connections, as the admin API lists them.
    func hubSnapshots() async throws -> [HubSnapshot] {
        try await self.gateway.sessions.hubSnapshots(on: self.group.any()).get()
    }

    /// WebSocket sessions relaying now (HTTP/2 connections not counted).
    public var relaySessions: Int { self.gateway.sessions.sessionCount }

    /// The drain: stops accepting, fails `/readyz`, closes every session with 1001 Going Away (and
    /// every HTTP/2 connection with GOAWAY), and waits up to `server.drain_timeout` for their
    /// closing handshakes. Then, if the gateway made its event loops, shuts them down, which cuts
    /// whatever is left. ``cut()`` ends the wait at once.
    public func shutdown() async {
        let started = NIODeadline.now()
        self.gateway.readiness.withLockedValue { $0 = false }
        GatewayMetrics.draining(true)
        await self.stopListening()
        let sessions = self.gateway.sessions
        let live = sessions.count
        let drainTimeout = self.configuration.server.drainTimeout
        self.gateway.logger.info("draining: stopped accepting, closing \(live) sessions and HTTP/2 connections with 1001 Going Away / GOAWAY", metadata: ["drain_timeout": "\(drainTimeout.prettyDescription)"])
        if live > 0 {
            sessions.goAwayAll(reason: "server shutting down")
            let deadline = started + drainTimeout
            while sessions.count > 0 && NIODeadline.now() < deadline && !self.cutRequested.withLockedValue({ $0 }) {
                try? await Task.sleep(nanoseconds: 10_000_000)
            }
        }
        let left = sessions.count
        let elapsed = Double((NIODeadline.now() - started).nanoseconds) / 1e9
        let why = self.cutRequested.withLockedValue { $0 } ? "second signal" : "drain deadline"
        self.gateway.logger.notice(left == 0 ? "drained: \(live) closed cleanly" : "drain ended by the \(why): \(live - left) closed cleanly, \(left) cut",
                                   metadata: ["seconds": "\(String(format: "%.3f", elapsed))"])
        if let admin = self.admin.withLockedValue({ $0 }) { await admin.stop() }
        self.gateway.targets.stopAll()
        if self.ownsGroup { try? await self.group.shutdownGracefully() }
    }

    /// Ends a drain in progress now (a second SIGTERM/SIGINT): the sessions left are cut.
    public func cut() {
        self.cutRequested.withLockedValue { $0 = true }
    }
}

public struct ListenError: Error, CustomStringConvertible {
    public var address: ListenAddress
    public var underlying: Error
    public var description: String { "cannot listen on \(self.address): \(self.underlying)" }
}
