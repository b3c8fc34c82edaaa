import Foundation
import NIOCore
import NIOPosix
import Testing
@testable import WSGate

/// Reads binary messages until `count` bytes arrived (TCP re-chunks, so boundaries are free).
func readBytes(_ client: TestClient, count: Int, opcode: UInt8 = 2) async throws -> [UInt8] {
    var bytes: [UInt8] = []
    bytes.reserveCapacity(count)
    while bytes.count < count {
        let message = try await client.readMessage(timeout: .seconds(30))
        #expect(message.opcode == opcode)
        if message.opcode == 8 { break }
        bytes += message.payload
    }
    return bytes
}

@Suite(.timeLimit(.minutes(2))) struct TCPBackendTests {
    @Test func messagesBecomeBytesAndBytesBecomeMessages() async throws {
        let fixture = try await GatewayFixture.standard()
        defer { Task { await fixture.stop() } }
        let (client, headers) = try await fixture.client("/tcp", headers: ["Sec-WebSocket-Protocol: binary"])
        #expect(headers["sec-websocket-protocol"] == "binary")
        try await client.sendFrame(2, Array("hello ".utf8))
        try await client.sendFrame(1, Array("wör".utf8), fin: false)
        try await client.sendFrame(0, Array("ld".utf8))
        #expect(try await readBytes(client, count: Array("hello wörld".utf8).count) == Array("hello wörld".utf8))
        try await client.sendClose(1000)
        #expect(try await client.readFrame().closeCode == 1000)
    }

    @Test func textModeSendsTextMessages() async throws {
        let fixture = try await GatewayFixture.start { _, tcp in
            [RouteConfiguration(path: "/", backend: .tcp(host: "127.0.0.1", port: tcp), messageType: .text)]
        }
        defer { Task { await fixture.stop() } }
        let (client, _) = try await fixture.client("/")
        try await client.sendFrame(1, Array("line €1\n".utf8))
        #expect(try await readBytes(client, count: 10, opcode: 1) == Array("line €1\n".utf8))
    }

    @Test func sixteenMebibytesBothWaysAtOnceDoNotDeadlock() async throws {
        // websockify deadlocks when a client sends a large message while the service echoes it.
        let fixture = try await GatewayFixture.standard()
        defer { Task { await fixture.stop() } }
        let (client, _) = try await fixture.client("/tcp")
        let payload = pattern(16 << 20, seed: 3)
        let sent = Task { try await client.send(TestClient.frame(2, payload)) }
        let echoed = try await readBytes(client, count: payload.count)
        try await sent.value
        #expect(echoed.count == payload.count)
        #expect(echoed == payload)
    }

    @Test func serviceEOFIsClose1000AndResetIs1011() async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        let polite = try await TestServices.start(group: group) { SayAndCloseHandler("bye") }
        let rude = try await TestServices.start(group: group) { SayAndCloseHandler("bye", reset: true) }
        let fixture = try await GatewayFixture.start(extraBackends: [polite, rude]) { _, _ in
            [
                RouteConfiguration(path: "/polite", backend: .tcp(host: "127.0.0.1", port: polite.localAddress!.port!)),
                RouteConfiguration(path: "/rude", backend: .tcp(host: "127.0.0.1", port: rude.localAddress!.port!)),
            ]
        }
        defer { Task { await fixture.stop() } }

        let (first, _) = try await fixture.client("/polite")
        #expect(try await first.readMessage().payload == Array("bye".utf8))
        #expect(try await first.readMessage().closeCode == 1000)
        // The answer may find the connection gone when a loaded machine delays this client past
        // the gateway's close timeout; the EOF is what matters.
        try? await first.sendClose(1000)
        try await first.waitForEOF()

        let (second, _) = try await fixture.client("/rude")
        try await second.sendFrame(2, [1])
        var code: UInt16?
        while code == nil {
            let message = try await second.readMessage()
            if message.opcode == 8 { code = message.closeCode }
        }
        #expect(code == 1011)
    }

    /// A service that says its last word and shuts its side (as mosquitto after DISCONNECT, or a
    /// service that replies and closes): once the client has answered the 1000 it gets, the gateway
    /// closes its own side too. It used to keep that socket in CLOSE-WAIT for good, with the session.
    @Test func aServiceThatClosesFirstIsClosedOnceTheClientAnswers() async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        let service = HalfClosingService("bye")
        let listener = try await TestServices.start(group: group) { service }
        let fixture = try await GatewayFixture.start(extraBackends: [listener]) { _, _ in
            [RouteConfiguration(path: "/closes", backend: .tcp(host: "127.0.0.1", port: listener.localAddress!.port!))]
        }
        defer { Task { await fixture.stop() } }

        let (client, _) = try await fixture.client("/closes")
        #expect(try await client.readMessage().payload == Array("bye".utf8))
        #expect(try await client.readMessage().closeCode == 1000)
        // On a loaded machine close_timeout may cut the client before its answer: either way the
        // connection ends, and the service's with it.
        try? await client.sendClose(1000)
        try await client.waitForEOF(timeout: .seconds(30))
        try await eventually("the gateway to close its side of the service connection", timeout: .seconds(30)) { service.sawEOF.withLockedValue { $0 } }
        try await eventually("the session to end", timeout: .seconds(30)) { fixture.gateway.activeSessions == 0 }
    }

    /// Services that end the conversation themselves, each the way real ones do, on tcp:// and
    /// unix: routes, over HTTP/1.1 and HTTP/2 (5 sessions on one connection): every session ends,
    /// every service connection is closed by the gateway, and nothing stays counted.
    @Test(arguments: ClosingService.Behaviour.allCases, [false, true])
    func servicesThatCloseFirstEndTheirSessions(behaviour: ClosingService.Behaviour, unix: Bool) async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        let counts = ClosingService.Counts()
        let path = Scratch.path("wsgate-closes", suffix: ".sock").path
        let listener = try await TestServices.start(group: group, unixPath: unix ? path : nil) { ClosingService(behaviour, counts: counts) }
        defer { try? FileManager.default.removeItem(atPath: path) }
        let fixture = try await GatewayFixture.start(extraBackends: [listener]) { _, _ in
            var route = RouteConfiguration(path: "/svc", backend: unix ? .unix(path: path) : .tcp(host: "127.0.0.1", port: listener.localAddress!.port!))
            if behaviour == .closesMidRecord { route.framing = .lengthPrefixed(LengthPrefix(kind: .u16be)) }
            return [route]
        }
        defer { Task { await fixture.stop() } }

        // HTTP/1.1: the client reads what comes, answers the close, and sees the connection end.
        // A record cut short was announced in a frame header already: no close frame can follow
        // it, so that client sees the connection end mid-frame (1006, as a browser reports it).
        for _ in 0..<5 {
            let (client, _) = try await fixture.client("/svc")
            try await client.sendFrame(2, Array("hello".utf8))
            // Bounds, not timings (the gateway runs in this test process, beside the whole suite):
            // whatever happens to the client's answer, close_timeout (5 s) ends the connection.
            if behaviour == .closesMidRecord {
                try await client.waitForEOF(timeout: .seconds(30))
            } else {
                var frame = try await client.readFrame(timeout: .seconds(30))
                while frame.opcode != 8 { frame = try await client.readFrame(timeout: .seconds(30)) }
                // The answer may find the connection gone: on a loaded machine the gateway's
                // close_timeout can run out before the client gets to answer (it is then cut).
                try? await client.sendClose(1000)
                try await client.waitForEOF(timeout: .seconds(30))
            }
            await client.close()
        }
        // HTTP/2: five sessions on one connection, each sends, reads, closes (h2_websocket.py).
        let run = try await Peers.run(try Peers.python, [Peers.script("h2_websocket.py"), "127.0.0.1", String(fixture.port)] + Array(repeating: "/svc", count: 5))
        #expect(run.output.contains("OK 5"), "\(run.output)")

        try await eventually("every session to end", timeout: .seconds(30)) { fixture.gateway.activeSessions == 0 }
        try await eventually("the gateway to close all 10 service connections", timeout: .seconds(30)) { counts.state.withLockedValue { $0.opened == 10 && $0.closed == 10 } }
    }

    @Test func clientCloseClosesTheServiceAfterDeliveringEverything() async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        let recorder = RecordingHandler()
        let service = try await TestServices.start(group: group) { recorder }
        let fixture = try await GatewayFixture.start(extraBackends: [service]) { _, _ in
            [RouteConfiguration(path: "/", backend: .tcp(host: "127.0.0.1", port: service.localAddress!.port!))]
        }
        defer { Task { await fixture.stop() } }
        let (client, _) = try await fixture.client("/")
        let payload = pattern(300_000, seed: 9)
        try await client.sendFrame(2, payload)
        try await client.sendClose(1000)
        #expect(try await client.readFrame().closeCode == 1000)
        try await eventually("the service to see everything and EOF") {
            recorder.received.withLockedValue { $0.eof && $0.bytes.count == payload.count }
        }
        #expect(recorder.received.withLockedValue { $0.bytes } == payload)
    }

    @Test func unixSocketBackend() async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        let path = Scratch.path("wsgate-test", suffix: ".sock").path
        let service = try await TestServices.start(group: group, unixPath: path) { SayAndCloseHandler("unix says hi") }
        let fixture = try await GatewayFixture.start(extraBackends: [service]) { _, _ in
            [RouteConfiguration(path: "/", backend: .unix(path: path))]
        }
        defer { Task { await fixture.stop(); try? FileManager.default.removeItem(atPath: path) } }
        let (client, _) = try await fixture.client("/")
        #expect(try await client.readMessage().text == "unix says hi")
    }
}

@Suite(.timeLimit(.minutes(3))) struct BackendFailureTests {
    @Test func refusedBackendIs502AndHungBackendIs504() async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        let silent = try await TestServices.start(group: group) { SilentHandler() }
        let refusing = try RefusingPort()
        defer { withExtendedLifetime(refusing) {} }
        let deadPort = refusing.port
        let fixture = try await GatewayFixture.start(extraBackends: [silent]) { _, _ in
            var hung = RouteConfiguration(path: "/hung", backend: .webSocket(host: "127.0.0.1", port: silent.localAddress!.port!, path: nil, query: nil))
            hung.limits.connectTimeout = .milliseconds(300)
            return [
                RouteConfiguration(path: "/down-ws", backend: .webSocket(host: "127.0.0.1", port: deadPort, path: nil, query: nil)),
                RouteConfiguration(path: "/down-tcp", backend: .tcp(host: "127.0.0.1", port: deadPort)),
                hung,
            ]
        }
        defer { Task { await fixture.stop() } }
        for (path, status) in [("/down-ws", 502), ("/down-tcp", 502), ("/hung", 504)] {
            let client = try await fixture.raw()
            try await client.send(TestClient.handshake(path: path))
            let (got, headers, _) = try await client.readResponse()
            #expect(got == status, "\(path)")
            #expect(headers["connection"] == "close")
            try await client.waitForEOF()
        }
    }

    @Test func backendRefusingTheHandshakeIs502() async throws {
        let fixture = try await GatewayFixture.start { _, tcp in
            // The TCP echo answers the backend handshake with its own request: not a 101.
            [RouteConfiguration(path: "/", backend: .webSocket(host: "127.0.0.1", port: tcp, path: nil, query: nil))]
        }
        defer { Task { await fixture.stop() } }
        let client = try await fixture.raw()
        try await client.send(TestClient.handshake(path: "/"))
        #expect(try await client.readResponse().0 == 502)
    }
}
