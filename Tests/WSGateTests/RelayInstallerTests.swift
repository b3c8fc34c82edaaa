import Logging
import NIOCore
import NIOEmbedded
import Testing
@testable import WSGate

/// The relay install with an embedded backend channel: a session that was set up but whose client
/// could not be answered still ends as a session (backend closed, registry and gauges let go).
@Suite struct RelayInstallerTests {
    @Test func anAbandonedInstallClosesTheBackendAndEndsTheSession() throws {
        let backend = EmbeddedChannel()
        try backend.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        let gateway = GatewayContext(configuration: GatewayConfiguration(listeners: [], routes: []), logger: Logger(label: "test"))
        let route = RouteConfiguration(path: "/", backend: .tcp(host: "127.0.0.1", port: 1))
        let relay = try RelayInstaller.prepare(backend: BackendConnection(channel: backend, subprotocol: nil, url: route.backend), route: route,
                                               clientAddress: nil, eventLoop: backend.eventLoop, gateway: gateway, clientProtocol: "http/1.1")
        #expect(gateway.sessions.count == 1)
        #expect(backend.isActive)

        relay.abandon()
        backend.embeddedEventLoop.run()
        #expect(!backend.isActive, "the backend connection is closed")
        #expect(gateway.sessions.count == 0, "the session left the registry")
        // Abandoning twice (the front's own close may follow) changes nothing.
        relay.abandon()
        #expect(gateway.sessions.count == 0)
    }
}
