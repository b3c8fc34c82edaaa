import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing
@testable import WSGate

/// A service that writes `chunks` one at a time, `gap` apart (so the gateway reads them apart),
/// then echoes what it gets; everything received is kept.
final class ScriptedService: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    let chunks: [[UInt8]]
    let gap: TimeAmount
    let echoes: Bool
    let received = NIOLockedValueBox<[UInt8]>([])

    init(_ chunks: [[UInt8]], gap: TimeAmount = .milliseconds(2), echoes: Bool = false) {
        self.chunks = chunks
        self.gap = gap
        self.echoes = echoes
    }

    func channelActive(context: ChannelHandlerContext) {
        let channel = context.channel
        for (index, chunk) in self.chunks.enumerated() {
            context.eventLoop.scheduleTask(in: self.gap * Int64(index)) {
                channel.writeAndFlush(channel.allocator.buffer(bytes: chunk), promise: nil)
            }
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = Self.unwrapInboundIn(data)
        self.received.withLockedValue { $0 += buffer.readableBytesView }
        if self.echoes { context.writeAndFlush(data, promise: nil) }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event { context.close(promise: nil) }
    }
}

@Suite(.timeLimit(.minutes(3))) struct FramingTests {
    static func fixture(_ service: @escaping @Sendable () -> ScriptedService, configure: @escaping (inout RouteConfiguration) -> Void) async throws -> GatewayFixture {
        let group = MultiThreadedEventLoopGroup.singleton
        let channel = try await TestServices.start(group: group) { service() }
        return try await GatewayFixture.start(extraBackends: [channel]) { _, _ in
            var route = RouteConfiguration(path: "/svc", backend: .tcp(host: "127.0.0.1", port: channel.localAddress!.port!))
            configure(&route)
            return [route]
        }
    }

    static func messages(_ client: TestClient, count: Int) async throws -> [TestClient.Frame] {
        var out: [TestClient.Frame] = []
        for _ in 0..<count { out.append(try await client.readMessage()) }
        return out
    }

    @Test func linesArriveOnePerMessageHoweverTheServiceWritesThem() async throws {
        let text = "first line\r\nsecond\n"
        let oneByteAtATime = text.utf8.map { [$0] }
        let hundred = [Array((0..<100).map { "line \($0)\n" }.joined().utf8)]
        let service = ScriptedService(oneByteAtATime + hundred)
        let fixture = try await Self.fixture({ service }) { route in
            route.framing = .lines(LineFraming())
            route.messageType = .text
        }
        defer { Task { await fixture.stop() } }
        let (client, _) = try await fixture.client("/svc")
        let got = try await Self.messages(client, count: 102)
        #expect(got.map(\.opcode) == Array(repeating: 1, count: 102), "text messages")
        #expect(got.map(\.text) == ["first line", "second"] + (0..<100).map { "line \($0)" })
        // The other way: a line ending is added where the message has none.
        try await client.sendFrame(1, Array("look".utf8))
        try await client.sendFrame(1, Array("north\n".utf8))
        try await client.sendFrame(1, Array("frag".utf8), fin: false)
        try await client.sendFrame(0, Array("ment".utf8), fin: true)
        try await eventually("the service got three lines") { String(decoding: service.received.withLockedValue { $0 }, as: UTF8.self) == "look\nnorth\nfragment\n" }
        await client.close()
    }

    @Test func aLineOverTheLimitCloses1009() async throws {
        let service = ScriptedService([Array("short\n".utf8), Array(repeating: UInt8(ascii: "x"), count: 300)])
        let fixture = try await Self.fixture({ service }) { route in
            var lines = LineFraming()
            lines.maxLineBytes = 256
            route.framing = .lines(lines)
        }
        defer { Task { await fixture.stop() } }
        let (client, _) = try await fixture.client("/svc")
        #expect(try await client.readMessage().payload == Array("short".utf8))
        let close = try await client.readFrame()
        #expect(close.opcode == 8 && close.closeCode == 1009, "\(close)")
        await client.close()
    }

    @Test func lengthPrefixedRecordsBothWays() async throws {
        var stream: [UInt8] = []
        for payload in [Array("alpha".utf8), [], Array(repeating: 0xAB, count: 70_000)] {
            stream += [UInt8(payload.count >> 24), UInt8(payload.count >> 16 & 0xFF), UInt8(payload.count >> 8 & 0xFF), UInt8(payload.count & 0xFF)] + payload
        }
        // The first record a byte at a time, the rest in one write.
        let chunks = stream.prefix(9).map { [$0] } + [Array(stream.dropFirst(9))]
        let service = ScriptedService(chunks)
        let fixture = try await Self.fixture({ service }) { route in route.framing = .lengthPrefixed(LengthPrefix(kind: .u32be)) }
        defer { Task { await fixture.stop() } }
        let (client, _) = try await fixture.client("/svc")
        let got = try await Self.messages(client, count: 3)
        #expect(got.map(\.payload.count) == [5, 0, 70_000])
        #expect(got[0].payload == Array("alpha".utf8) && got[0].opcode == 2)
        #expect(got[2].payload.allSatisfy { $0 == 0xAB })
        try await client.sendFrame(2, [1, 2, 3])
        try await client.sendFrame(2, [9], fin: false)
        try await client.sendFrame(0, [8, 7], fin: true)
        try await eventually("the service got two records") { service.received.withLockedValue { $0 } == [0, 0, 0, 3, 1, 2, 3, 0, 0, 0, 3, 9, 8, 7] }
        await client.close()
    }

    @Test func limitsAndUTF8PolicyCloseWithTheirCodes() async throws {
        // A u16 record announcing more than the route allows.
        let big = ScriptedService([[0xFF, 0xFF]])
        let prefixed = try await Self.fixture({ big }) { route in
            var prefix = LengthPrefix(kind: .u16be)
            prefix.maxMessageBytes = 1000
            route.framing = .lengthPrefixed(prefix)
        }
        let (client, _) = try await prefixed.client("/svc")
        #expect(try await client.readFrame().closeCode == 1009)
        await client.close()
        // A client message too long for a u8 prefix.
        let quiet = ScriptedService([])
        let small = try await Self.fixture({ quiet }) { route in route.framing = .lengthPrefixed(LengthPrefix(kind: .u8)) }
        let (sender, _) = try await small.client("/svc")
        try await sender.sendFrame(2, Array(repeating: 1, count: 256))
        #expect(try await sender.readFrame().closeCode == 1009)
        await sender.close()
        // Not UTF-8 on a text route: 1007 with invalid_utf8 close, a binary message by default.
        let strict = try await Self.fixture({ ScriptedService([[0x66, 0xFF, 0x0A]]) }) { route in
            route.framing = .lines(LineFraming())
            route.messageType = .text
            route.invalidUTF8 = .close
        }
        let (strictClient, _) = try await strict.client("/svc")
        #expect(try await strictClient.readFrame().closeCode == 1007)
        await strictClient.close()
        let lenient = try await Self.fixture({ ScriptedService([[0x66, 0xFF, 0x0A]]) }) { route in
            route.framing = .lines(LineFraming())
            route.messageType = .text
        }
        let (lenientClient, _) = try await lenient.client("/svc")
        let message = try await lenientClient.readMessage()
        #expect(message.opcode == 2 && message.payload == [0x66, 0xFF])
        await lenientClient.close()
        for fixture in [prefixed, small, strict, lenient] { await fixture.stop() }
    }

    @Test func http2StreamsGetTheSameFraming() async throws {
        let fixture = try await Self.fixture({ ScriptedService([], echoes: true) }) { route in
            route.framing = .lines(LineFraming())
            route.messageType = .text
        }
        defer { Task { await fixture.stop() } }
        // The peer sends "hello /svc" and expects it back: the service sees "hello /svc\n" and
        // echoes it, the gateway takes the \n off again.
        let run = try await Peers.run(try Peers.python, [Peers.script("h2_websocket.py"), "127.0.0.1", String(fixture.port), "/svc"])
        #expect(streamResults(run.output)["/svc"] == StreamResult(path: "/svc", status: "200", echo: "hello /svc", close: 1000), "\(run.output)")
    }
}
