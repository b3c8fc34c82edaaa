import ChildProcesses
import Foundation
import NIOCore
import NIOPosix
import Testing
@testable import WSGate

/// permessage-deflate with clients, over real sockets: negotiation in the 101, compressed messages
/// both ways, and the zip-bomb bound.
@Suite struct CompressionTests {
    static func gateway(maxMessageBytes: Int = 1 << 20, compression: Bool = true) async throws -> GatewayFixture {
        try await GatewayFixture.start { ws, tcp in
            var toTCP = RouteConfiguration(path: "/tcp", backend: .tcp(host: "127.0.0.1", port: tcp))
            var toWS = RouteConfiguration(path: "/ws", backend: .webSocket(host: "127.0.0.1", port: ws, path: nil, query: nil))
            for index in [0, 1] {
                var route = index == 0 ? toTCP : toWS
                route.compression.enabled = compression
                route.limits.maxMessageBytes = maxMessageBytes
                if index == 0 { toTCP = route } else { toWS = route }
            }
            return [toTCP, toWS]
        }
    }

    /// What a browser does: compress a message with its own deflater (fresh per test).
    static func compress(_ bytes: [UInt8]) throws -> [UInt8] {
        let deflater = MessageDeflater(windowBits: 15, level: 6, memoryLevel: 8, resetsEachMessage: true)
        var input = ByteBuffer(bytes: bytes)
        var output = ByteBuffer()
        try deflater.deflate(&input, into: &output)
        try deflater.finishMessage(into: &output)
        return Array(output.readableBytesView)
    }

    @Test func negotiatedAndBothDirectionsCompressed() async throws {
        let fixture = try await Self.gateway()
        defer { Task { await fixture.stop() } }
        for path in ["/tcp", "/ws"] {
            let (client, headers) = try await fixture.client(path, headers: ["Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"])
            #expect(headers["sec-websocket-extensions"] == "permessage-deflate")
            let message = Array(String(repeating: "{\"id\":17,\"status\":\"ok\",\"items\":[1,2,3]} ", count: 200).utf8)
            let compressed = try Self.compress(message)
            #expect(compressed.count < message.count / 10)
            try await client.send(TestClient.frame(1, compressed, rsv1: true))
            // Back through the gateway's deflater: a compressed message (RSV1 on its first frame).
            let inflater = MessageInflater(windowBits: 15, resetsEachMessage: false)
            var received: [UInt8] = []
            var compressedOnTheWire = 0
            while received.count < message.count {
                let reply = try await client.readMessage()
                #expect(reply.compressed, "a \(reply.payload.count)-byte message came back uncompressed")
                compressedOnTheWire += reply.payload.count
                try inflater.inflate(ByteBuffer(bytes: reply.payload), endsMessage: true, chunkSize: 64 * 1024) { received += $0.readableBytesView }
            }
            #expect(received == message, "\(path)")
            #expect(compressedOnTheWire < message.count / 10)
            try await client.sendClose(1000)
            #expect(try await client.readMessage().closeCode == 1000)
            await client.close()
        }
    }

    /// Compressed messages that inflate to far more than they weigh, uploaded to a service that reads
    /// slowly: inflating must pause when the service's socket is full and resume where it stopped
    /// (inside a frame or in a message's tail), so every byte arrives, in order, and none twice.
    @Test(.timeLimit(.minutes(2))) func inflatingPausesForASlowBackendAndLosesNothing() async throws {
        // 64 KiB, ~5 KiB compressed: sixteen copies of one 4 KiB run, each starting with its own
        // number, so the service's check (one byte in 4096) sees a chunk out of place.
        let block = (0..<16).flatMap { chunk in [UInt8(chunk)] + pattern(4096, seed: 9).dropFirst() }
        let slow = SlowReaderHandler(block: block)
        let service = try await slow.listen(group: MultiThreadedEventLoopGroup.singleton)
        defer { Task { try? await service.close() } }
        let servicePort = try #require(service.localAddress?.port)
        let fixture = try await GatewayFixture.start { _, _ in
            var route = RouteConfiguration(path: "/slow", backend: .tcp(host: "127.0.0.1", port: servicePort))
            route.compression.enabled = true
            return [route]
        }
        defer { Task { await fixture.stop() } }
        let (client, headers) = try await fixture.client("/slow", headers: ["Sec-WebSocket-Extensions: permessage-deflate"])
        #expect(headers["sec-websocket-extensions"] == "permessage-deflate")
        let compressed = try Self.compress(block)
        let messages = 256
        for index in 0..<messages {
            if index % 2 == 0 {
                try await client.send(TestClient.frame(2, compressed, rsv1: true))
            } else {
                // Fragmented: RSV1 on the first frame only, the compressed bytes cut in three.
                let third = compressed.count / 3
                try await client.send(TestClient.frame(2, Array(compressed[..<third]), fin: false, rsv1: true))
                try await client.send(TestClient.frame(0, Array(compressed[third..<(2 * third)]), fin: false))
                try await client.send(TestClient.frame(0, Array(compressed[(2 * third)...])))
            }
        }
        let total = messages * block.count
        try await eventually("all \(total) bytes at the service", timeout: .seconds(60)) { slow.state.withLockedValue { $0.received } >= total }
        let (received, mismatches) = slow.state.withLockedValue { ($0.received, $0.mismatches) }
        #expect(received == total)
        #expect(mismatches == 0)
    }

    /// 16 MiB of zeros is 16 KiB compressed: the gateway stops inflating at the route's 1 MiB limit
    /// and closes with 1009, having produced no more than the limit.
    @Test func zipBombEndsWith1009AtTheLimit() async throws {
        let fixture = try await Self.gateway(maxMessageBytes: 1 << 20)
        defer { Task { await fixture.stop() } }
        let deflater = MessageDeflater(windowBits: 15, level: 9, memoryLevel: 8, resetsEachMessage: true)
        var bomb = ByteBuffer()
        for _ in 0..<16 {
            var zeros = ByteBuffer(repeating: 0, count: 1 << 20)
            try deflater.deflate(&zeros, into: &bomb)
        }
        try deflater.finishMessage(into: &bomb)
        #expect(bomb.readableBytes < 32 * 1024)
        let (client, _) = try await fixture.client("/tcp", headers: ["Sec-WebSocket-Extensions: permessage-deflate"])
        try await client.send(TestClient.frame(2, Array(bomb.readableBytesView), rsv1: true))
        var close: TestClient.Frame?
        var echoed = 0
        while close == nil {
            let frame = try await client.readMessage()
            if frame.opcode == 8 { close = frame } else { echoed += frame.payload.count }
        }
        #expect(close?.closeCode == 1009)
        #expect(echoed <= 1 << 20)  // compressed echo of at most what was let through
        await client.close()
    }

    @Test func routeWithoutCompressionDeclinesAndRejectsRSV1() async throws {
        let fixture = try await Self.gateway(compression: false)
        defer { Task { await fixture.stop() } }
        let (client, headers) = try await fixture.client("/ws", headers: ["Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"])
        #expect(headers["sec-websocket-extensions"] == nil)
        try await client.send(TestClient.frame(2, try Self.compress([1, 2, 3]), rsv1: true))
        #expect(try await client.readMessage().closeCode == 1002)
        await client.close()
    }

    @Test func malformedOfferIsDeclinedNotFailed() async throws {
        let fixture = try await Self.gateway()
        defer { Task { await fixture.stop() } }
        let (client, headers) = try await fixture.client("/ws", headers: ["Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=99"])
        #expect(headers["sec-websocket-extensions"] == nil)
        try await client.sendFrame(1, Array("plain".utf8))
        #expect(try await client.readMessage().text == "plain")
        await client.close()
    }
}

/// A Python `websockets` echo server (scripts/echo_ws.py) as a child process.
final class PythonEchoServer: Sendable {
    let process: ChildProcess
    let port: Int
    /// The server's output (its port, and why it failed): removed by ``stop()``.
    let output: URL

    init(_ arguments: [String]) async throws {
        let output = Scratch.path("echo-ws", suffix: ".log")
        self.output = output
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        let process = try await ChildProcess.start(try Peers.python.path, [Peers.packageRoot.appendingPathComponent("scripts/echo_ws.py").path, "--port", "0"] + arguments, log: output)
        self.process = process
        let deadline = NIODeadline.now() + .seconds(20)
        while NIODeadline.now() < deadline {
            let text = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
            if let line = text.split(separator: "\n").first(where: { $0.hasPrefix("listening ") }), let port = Int(line.dropFirst(10)) {
                self.port = port
                return
            }
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        process.signal(SIGKILL)
        try? FileManager.default.removeItem(at: output)
        throw TestTimeout(what: "echo_ws.py to listen")
    }

    /// SIGKILL, without waiting: see ``GatewayProcess/stop()``.
    func stop() {
        self.process.signal(SIGKILL)
        try? FileManager.default.removeItem(at: self.output)
    }
}

@Suite struct BackendCompressionTests {
    /// The backend leg offers permessage-deflate on its own: a backend that agrees gets compressed
    /// frames (and sends them), one that declines gets plain ones — whatever the client negotiated.
    @Test(arguments: [false, true])
    func backendLegNegotiatesIndependently(clientCompresses: Bool) async throws {
        let deflating = try await PythonEchoServer(["--compression", "deflate", "--announce"])
        let plain = try await PythonEchoServer(["--announce"])
        defer { deflating.stop(); plain.stop() }
        let fixture = try await GatewayFixture.start { _, _ in
            [("/deflating", deflating.port), ("/plain", plain.port)].map { path, port in
                var route = RouteConfiguration(path: path, backend: .webSocket(host: "127.0.0.1", port: port, path: nil, query: nil))
                route.backendCompression = true
                route.compression.enabled = clientCompresses
                return route
            }
        }
        defer { Task { await fixture.stop() } }
        for (path, expected) in [("/deflating", "permessage-deflate"), ("/plain", "none")] {
            let offer = clientCompresses ? ["Sec-WebSocket-Extensions: permessage-deflate"] : []
            let (client, headers) = try await fixture.client(path, headers: offer)
            #expect((headers["sec-websocket-extensions"] != nil) == clientCompresses)
            let inflater = MessageInflater(windowBits: 15, resetsEachMessage: false)
            func receive() async throws -> [UInt8] {
                let frame = try await client.readMessage()
                guard frame.compressed else { return frame.payload }
                var result: [UInt8] = []
                try inflater.inflate(ByteBuffer(bytes: frame.payload), endsMessage: true, chunkSize: 64 * 1024) { result += $0.readableBytesView }
                return result
            }
            #expect(String(decoding: try await receive(), as: UTF8.self).hasPrefix(expected), "\(path)")
            let message = Array(String(repeating: "{\"backend\":\"compressed hop\",\"n\":12345} ", count: 2000).utf8)
            try await client.send(TestClient.frame(1, clientCompresses ? try CompressionTests.compress(message) : message, rsv1: clientCompresses))
            #expect(try await receive() == message, "\(path)")
            try await client.sendClose(1000)
            #expect(try await client.readMessage().closeCode == 1000)
            await client.close()
        }
    }
}

/// Answers any WebSocket handshake with a valid 101 plus the given `Sec-WebSocket-Extensions`.
final class ExtensionAnsweringHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    let extensions: String
    private var request = ""

    init(extensions: String) {
        self.extensions = extensions
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.request += String(buffer: Self.unwrapInboundIn(data))
        guard let response = TestServices.webSocketAnswer(to: self.request, extraHeaders: "Sec-WebSocket-Extensions: \(self.extensions)\r\n") else { return }
        context.writeAndFlush(NIOAny(context.channel.allocator.buffer(string: response)), promise: nil)
    }
}

@Suite struct BackendCompressionAnswerTests {
    /// An extension the gateway did not offer, or permessage-deflate answered with a parameter it did
    /// not offer, fails the backend handshake: the client gets 502.
    @Test(arguments: [(false, "permessage-deflate"), (true, "permessage-deflate; client_max_window_bits=10"), (true, "x-unknown")])
    func answersOutsideTheOfferAre502(offered: Bool, answer: String) async throws {
        let backend = try await TestServices.start(group: MultiThreadedEventLoopGroup.singleton) { ExtensionAnsweringHandler(extensions: answer) }
        defer { Task { try? await backend.close() } }
        let gateway = try await GatewayFixture.start { _, _ in
            var route = RouteConfiguration(path: "/", backend: .webSocket(host: "127.0.0.1", port: backend.localAddress!.port!, path: nil, query: nil))
            route.backendCompression = offered
            return [route]
        }
        defer { Task { await gateway.stop() } }
        let client = try await gateway.raw()
        try await client.send(TestClient.handshake(path: "/"))
        let (status, _, body) = try await client.readResponse()
        #expect(status == 502, "\(body)")
        await client.close()
    }
}
