import NIOCore
import NIOPosix
import Testing
@testable import WSGate

@Suite(.timeLimit(.minutes(2))) struct WebSocketBackendTests {
    @Test func textBinaryEmptyAndFragmentedMessagesRoundTrip() async throws {
        let fixture = try await GatewayFixture.standard()
        defer { Task { await fixture.stop() } }
        let (client, _) = try await fixture.client("/ws")

        try await client.sendFrame(1, Array("héllo".utf8))
        #expect(try await client.readMessage() == .init(fin: true, opcode: 1, payload: Array("héllo".utf8)))

        try await client.sendFrame(2, [0, 1, 2, 255])
        #expect(try await client.readMessage() == .init(fin: true, opcode: 2, payload: [0, 1, 2, 255]))

        try await client.sendFrame(1, [])
        #expect(try await client.readMessage() == .init(fin: true, opcode: 1, payload: []))

        // Fragmentation is relayed frame for frame: the echo returns the same three frames.
        try await client.sendFrame(1, Array("frag".utf8), fin: false)
        try await client.sendFrame(9, Array("ping".utf8))
        try await client.sendFrame(0, Array("men".utf8), fin: false)
        try await client.sendFrame(0, Array("ted".utf8))
        var frames: [TestClient.Frame] = []
        for _ in 0..<4 { frames.append(try await client.readFrame()) }
        // The gateway answers the ping on its own hop; where the pong lands among the echoed frames is timing.
        #expect(frames.filter { $0.opcode == 10 } == [.init(fin: true, opcode: 10, payload: Array("ping".utf8))])
        #expect(frames.filter { $0.opcode != 10 } == [
            .init(fin: false, opcode: 1, payload: Array("frag".utf8)),
            .init(fin: false, opcode: 0, payload: Array("men".utf8)),
            .init(fin: true, opcode: 0, payload: Array("ted".utf8)),
        ])

        try await client.sendClose(1000)
        #expect(try await client.readFrame().closeCode == 1000)
        try await client.waitForEOF()
    }

    @Test func sixteenMebibyteMessage() async throws {
        let fixture = try await GatewayFixture.standard()
        defer { Task { await fixture.stop() } }
        let (client, _) = try await fixture.client("/ws")
        let payload = pattern(16 << 20)
        try await client.send(TestClient.frame(2, payload))
        let echoed = try await client.readMessage(timeout: .seconds(60))
        #expect(echoed.opcode == 2)
        #expect(echoed.payload.count == payload.count)
        #expect(echoed.payload == payload)
        await client.close()
    }

    @Test func clientCloseCodeAndBackendCloseCodePropagate() async throws {
        let fixture = try await GatewayFixture.standard()
        defer { Task { await fixture.stop() } }

        // Client starts the close: the gateway answers on its hop with the client's code.
        let (first, _) = try await fixture.client("/ws")
        try await first.sendClose(4002, "done")
        #expect(try await first.readFrame().closeCode == 4002)
        try await first.waitForEOF()

        // Backend starts the close (the echo closes with the code it is asked for): the client sees it.
        let (second, _) = try await fixture.client("/ws")
        try await second.sendFrame(1, Array("close:4001".utf8))
        let close = try await second.readFrame()
        #expect(close.closeCode == 4001)
        #expect(close.payload.dropFirst(2) == Array("bye".utf8)[...])
        try? await second.sendClose(4001)  // may come after close_timeout in a hogged run: it is cut then
        try await second.waitForEOF(timeout: .seconds(30))
    }

    @Test func subprotocolAndForwardingHeadersReachTheBackend() async throws {
        var server = ServerSettings()
        server.trustedProxies = [IPNetwork(parsing: "127.0.0.0/8")!]  // so the client's own X-Forwarded-For is kept
        let fixture = try await GatewayFixture.start(server: server) { ws, _ in
            var route = RouteConfiguration(path: "/app", backend: .webSocket(host: "127.0.0.1", port: ws, path: "/v1", query: "k=1"))
            route.origins = .allowList(["https://app.example"])
            return [route]
        }
        defer { Task { await fixture.stop() } }
        let (client, headers) = try await fixture.client("/app/inspect?room=7", headers: [
            "Sec-WebSocket-Protocol: chat.v2, chat.v1", "Origin: https://app.example", "X-Forwarded-For: 203.0.113.9", "Cookie: a=b",
        ])
        #expect(headers["sec-websocket-protocol"] == "chat.v2")
        let greeting = try await client.readMessage().text
        #expect(greeting.hasPrefix("GET /v1/inspect?k=1&room=7\n"))
        #expect(greeting.contains("origin: https://app.example") || greeting.contains("Origin: https://app.example"))
        #expect(greeting.contains("X-Forwarded-For: 203.0.113.9, 127.0.0.1"))
        #expect(greeting.contains("Forwarded: for=127.0.0.1;host=\"gateway.test\";proto=http"))
        #expect(greeting.contains("Cookie: a=b"))
        #expect(greeting.contains("Sec-WebSocket-Protocol: chat.v2, chat.v1"))
        await client.close()
    }

    @Test func protocolErrorsCloseTheClientWithTheRightCode() async throws {
        let fixture = try await GatewayFixture.standard()
        defer { Task { await fixture.stop() } }
        let cases: [(ByteBuffer, UInt16)] = [
            (TestClient.frame(3, []), 1002),  // reserved opcode
            (TestClient.frame(0, [1]), 1002),  // continuation without start
            (TestClient.frame(1, [0xC0, 0x80]), 1007),  // invalid UTF-8
            (TestClient.frame(9, [UInt8](repeating: 0, count: 126)), 1002),  // long ping
        ]
        for (frame, code) in cases {
            let (client, _) = try await fixture.client("/ws")
            try await client.send(frame)
            #expect(try await client.readFrame().closeCode == code)
            try await client.waitForEOF()
        }
        // An unmasked client frame is refused too.
        let (client, _) = try await fixture.client("/ws")
        try await client.send([0x81, 0x01, 0x41])
        #expect(try await client.readFrame().closeCode == 1002)
    }

    @Test func oversizedMessageIs1009() async throws {
        let fixture = try await GatewayFixture.start { ws, _ in
            var route = RouteConfiguration(path: "/", backend: .webSocket(host: "127.0.0.1", port: ws, path: nil, query: nil))
            route.limits.maxMessageBytes = 1000
            return [route]
        }
        defer { Task { await fixture.stop() } }
        let (client, _) = try await fixture.client("/")
        try await client.sendFrame(2, pattern(1000))
        #expect(try await client.readMessage().payload.count == 1000)
        try await client.sendFrame(2, pattern(600), fin: false)
        try await client.sendFrame(0, pattern(401))
        let close = try await client.readMessage()
        #expect(close.closeCode == 1009)
    }

    @Test func earlyFramesAfterTheRequestAreNotLost() async throws {
        let fixture = try await GatewayFixture.standard()
        defer { Task { await fixture.stop() } }
        let client = try await fixture.raw()
        var bytes = ByteBuffer(string: TestClient.handshake(path: "/ws"))
        var frame = TestClient.frame(1, Array("early".utf8))
        bytes.writeBuffer(&frame)
        try await client.send(bytes)
        #expect(try await client.readHead().0 == 101)
        #expect(try await client.readMessage().text == "early")
    }
}

@Suite(.timeLimit(.minutes(3))) struct SessionLifecycleTests {
    @Test func idleSessionsAreClosedWith1001() async throws {
        let fixture = try await GatewayFixture.start { ws, tcp in
            var route = RouteConfiguration(path: "/", backend: .tcp(host: "127.0.0.1", port: tcp))
            route.limits.idleTimeout = .milliseconds(300)
            return [route]
        }
        defer { Task { await fixture.stop() } }
        let started = NIODeadline.now()
        let (client, _) = try await fixture.client("/")
        // Nothing is sent either way; the close must come, and not before the timeout.
        let close = try await client.readFrame(timeout: .seconds(10))
        #expect(close.closeCode == 1001)
        #expect(NIODeadline.now() - started >= .milliseconds(300))
    }

    @Test func shutdownSendsGoingAwayToEverySession() async throws {
        // Both clients answer the 1001 in turn; with both cores busy that has taken longer than the
        // 5 s close timeout and the 10 s drain, which then cut the second one (allowed, not tested here).
        var server = GatewayFixture.patientServer
        server.closeTimeout = .seconds(50)
        server.drainTimeout = .seconds(50)
        let fixture = try await GatewayFixture.standard(server: server)
        defer { Task { await fixture.stop() } }
        let (ws, _) = try await fixture.client("/ws")
        let (tcp, _) = try await fixture.client("/tcp")
        try await eventually("two live sessions") { fixture.gateway.activeSessions == 2 }
        let shutdown = Task { await fixture.gateway.shutdown() }
        for client in [ws, tcp] {
            let close = try await client.readFrame()
            #expect(close.closeCode == 1001)
            try await client.sendClose(1001)
            try await client.waitForEOF()
        }
        await shutdown.value
        #expect(fixture.gateway.activeSessions == 0)
    }
}
