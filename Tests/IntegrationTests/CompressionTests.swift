import NIOCore
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
                for var input in [ByteBuffer(bytes: reply.payload), inflater.messageTail()] {
                    while true {
                        var output = ByteBuffer()
                        output.reserveCapacity(64 * 1024)
                        let done = try inflater.inflate(&input, into: &output)
                        received += output.readableBytesView
                        if done { break }
                    }
                }
            }
            #expect(received == message, "\(path)")
            #expect(compressedOnTheWire < message.count / 10)
            try await client.sendClose(1000)
            #expect(try await client.readMessage().closeCode == 1000)
            await client.close()
        }
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
