import NIOCore
import NIOPosix
import Testing
@testable import WSGate

/// RFC 6455 §7.1.1: after the closing handshake the server closes the TCP connection, and the
/// client waits for it. The gateway is the client of its backends, so the TIME_WAIT state of each
/// session's backend connection stays with the backend instead of holding one of the gateway's
/// ports for a minute — at a few hundred sessions a second to one backend that would use up the
/// ephemeral ports.
@Suite(.timeLimit(.minutes(2))) struct BackendCloseOrderTests {
    static let sessions = 8

    /// This network namespace's TCP sockets between the two ports of 127.0.0.1, in `state` (hex,
    /// as /proc shows it). Other tests (and other processes) use the same port numbers on other
    /// loopback addresses.
    static func sockets(localPort: Int, remotePort: Int, state: Substring) -> Int {
        GatewayProcess.tcpSockets("self").filter { $0.isLoopback(localPort: localPort, remotePort: remotePort) && $0.state == state }.count
    }

    /// One session each way the handshake can start: the client closes, or the backend does (the
    /// echo backend starts it on "close:CODE"). Either way the backend closes the connection first.
    @Test(arguments: [false, true])
    func theBackendClosesFirstAndKeepsTheTimeWait(backendStarts: Bool) async throws {
        // A minute for each closing handshake: with both cores busy this process has stalled past
        // the default 5 s between reading the backend's close and answering it, and the gateway
        // rightly dropped the client. What is tested here is who closes first, not how long it waits.
        var server = GatewayFixture.patientServer
        server.closeTimeout = .seconds(60)
        let fixture = try await GatewayFixture.start(server: server) { ws, _ in
            [RouteConfiguration(path: "/", backend: .webSocket(host: "127.0.0.1", port: ws, path: nil, query: nil))]
        }
        defer { Task { await fixture.stop() } }
        var gatewayPorts: [Int] = []  // the gateway's end of each backend connection
        for _ in 0..<Self.sessions {
            let (client, _) = try await fixture.client("/")
            try await client.sendFrame(1, Array("hello".utf8))
            #expect(try await client.readMessage().payload == Array("hello".utf8))
            // Sessions run one at a time: the one backend connection up now is this session's.
            let live = GatewayProcess.establishedLoopback(toPort: fixture.wsEchoPort)
            #expect(live.count == 1, "\(live)")
            gatewayPorts += live.compactMap(\.localPort)
            if backendStarts {
                try await client.sendFrame(1, Array("close:4000".utf8))
                let close = try await client.readFrame()
                #expect(close.opcode == 8 && Array(close.payload.prefix(2)) == [0x0F, 0xA0])
                try await client.sendClose(4000)
            } else {
                try await client.sendClose(1000)
                #expect(try await client.readFrame().opcode == 8)
            }
            try await client.waitForEOF()
            await client.close()
            // The backend leg's handshake may still be under way: the next session starts after it.
            try await eventually("the backend connection to end") { GatewayProcess.establishedLoopback(toPort: fixture.wsEchoPort).isEmpty }
        }
        // Each backend connection ends in TIME_WAIT ("06") on the backend's side...
        try await eventually("\(Self.sessions) backend-side TIME_WAITs", timeout: .seconds(20)) {
            gatewayPorts.allSatisfy { Self.sockets(localPort: fixture.wsEchoPort, remotePort: $0, state: "06") == 1 }
        }
        // ...and none on the gateway's.
        #expect(gatewayPorts.filter { Self.sockets(localPort: $0, remotePort: fixture.wsEchoPort, state: "06") > 0 } == [])
    }

    /// A backend that never closes after the closing handshake holds the connection for
    /// `close_timeout` at most; the client's side is not held up by it.
    @Test func aBackendThatNeverClosesIsClosedAfterTheCloseTimeout() async throws {
        let service = HalfFrameBackend(.answersCloseButStaysConnected)
        let backend = try await TestServices.start(group: MultiThreadedEventLoopGroup.singleton) { service }
        var server = GatewayFixture.patientServer
        server.closeTimeout = .seconds(1)
        let fixture = try await GatewayFixture.start(server: server, extraBackends: [backend]) { _, _ in
            [RouteConfiguration(path: "/", backend: .webSocket(host: "127.0.0.1", port: backend.localAddress!.port!, path: nil, query: nil))]
        }
        defer { Task { await fixture.stop() } }
        let (client, _) = try await fixture.client("/")
        try await client.sendClose(1000)
        #expect(try await client.readFrame().opcode == 8)
        try await client.waitForEOF()
        try await eventually("the gateway to close the backend connection", timeout: .seconds(20)) {
            service.gatewayClosed.withLockedValue { $0 }
        }
        await client.close()
    }
}
