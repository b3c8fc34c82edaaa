import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing
@testable import WSGate

/// A WebSocket backend that speaks raw frames, for closes that land inside a frame: it answers the
/// handshake, then plays one of two parts, and keeps every frame the gateway sends it.
final class HalfFrameBackend: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer

    enum Part: Sendable {
        /// Sends the first half of a binary frame of `payload`, and the rest only once the gateway's
        /// close has arrived; then answers that close with its code.
        case finishesItsFrameAfterTheClose(payload: [UInt8])
        /// Sends a close with `code` once `after` bytes of the gateway's first frame have arrived
        /// (inside that frame), then keeps reading.
        case closesInsideTheGatewaysFrame(code: UInt16, after: Int)
        /// Answers the gateway's close but never ends the TCP connection.
        case answersCloseButStaysConnected
    }

    struct Received: Sendable {
        /// Whole frames from the gateway, unmasked: opcode and payload.
        var frames: [(opcode: UInt8, payload: [UInt8])] = []
    }

    let part: Part
    let received = NIOLockedValueBox(Received())
    /// The gateway ended the TCP connection (its FIN or its close).
    let gatewayClosed = NIOLockedValueBox(false)
    private var request = ""
    private var upgraded = false
    private var inbound = ByteBuffer()
    private var closeSent = false

    init(_ part: Part) {
        self.part = part
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = Self.unwrapInboundIn(data)
        guard self.upgraded else {
            self.request += bytes.readString(length: bytes.readableBytes) ?? ""
            guard let response = TestServices.webSocketAnswer(to: self.request) else { return }
            self.upgraded = true
            context.write(NIOAny(context.channel.allocator.buffer(string: response)), promise: nil)
            if case .finishesItsFrameAfterTheClose(let payload) = self.part {
                var head = context.channel.allocator.buffer(capacity: 10 + payload.count / 2)
                FrameEncoder.writeHeader(into: &head, fin: true, opcode: .binary, payloadLength: payload.count, mask: nil)
                head.writeBytes(payload[..<(payload.count / 2)])
                context.write(NIOAny(head), promise: nil)
            }
            context.flush()
            return
        }
        self.inbound.writeBuffer(&bytes)
        if case .closesInsideTheGatewaysFrame(let code, let after) = self.part, !self.closeSent, self.inbound.readableBytes >= after {
            self.closeSent = true
            context.writeAndFlush(NIOAny(Self.closeFrame(code, allocator: context.channel.allocator)), promise: nil)
        }
        while let frame = Self.parseMaskedFrame(&self.inbound) {
            self.received.withLockedValue { $0.frames.append(frame) }
            guard frame.opcode == 8 else { continue }
            if case .answersCloseButStaysConnected = self.part {
                context.writeAndFlush(NIOAny(Self.closeFrame(1000, allocator: context.channel.allocator)), promise: nil)
                continue
            }
            if case .finishesItsFrameAfterTheClose(let payload) = self.part {
                var rest = context.channel.allocator.buffer(capacity: payload.count - payload.count / 2)
                rest.writeBytes(payload[(payload.count / 2)...])
                context.write(NIOAny(rest), promise: nil)
                let code = frame.payload.count >= 2 ? UInt16(frame.payload[0]) << 8 | UInt16(frame.payload[1]) : 1000
                // The server ends the TCP connection once both closes are out (RFC 6455 §7.1.1).
                context.writeAndFlush(NIOAny(Self.closeFrame(code, allocator: context.channel.allocator))).assumeIsolated().whenComplete { _ in
                    context.close(promise: nil)
                }
            } else {
                context.close(promise: nil)
            }
            return
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event { self.gatewayClosed.withLockedValue { $0 = true } }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.gatewayClosed.withLockedValue { $0 = true }
    }

    static func closeFrame(_ code: UInt16, allocator: ByteBufferAllocator) -> ByteBuffer {
        var frame = allocator.buffer(capacity: 4)
        FrameEncoder.writeControlFrame(into: &frame, opcode: .close, payload: FrameEncoder.closePayload(code: WebSocketCloseCode(code), reason: ""), mask: nil)
        return frame
    }

    /// One whole masked frame off the front of `buffer`, or nil until it has all arrived.
    static func parseMaskedFrame(_ buffer: inout ByteBuffer) -> (opcode: UInt8, payload: [UInt8])? {
        guard let head = TestClient.frameHead(buffer.readableBytesView) else { return nil }
        let total = head.size + (head.masked ? 4 : 0) + head.length
        guard buffer.readableBytes >= total, let key = buffer.getBytes(at: buffer.readerIndex + head.size, length: head.masked ? 4 : 0),
              var payload = buffer.getSlice(at: buffer.readerIndex + head.size + key.count, length: head.length) else { return nil }
        if head.masked {
            WebSocketMask(key[0], key[1], key[2], key[3]).apply(to: &payload, offset: 0)
        }
        buffer.moveReaderIndex(forwardBy: total)
        return (head.b0 & 0x0F, Array(payload.readableBytesView))
    }
}

/// A close that arrives while the gateway is halfway through relaying a frame to the closing peer
/// cannot be answered at once (no frame can go inside another): the rest of the frame is relayed
/// first, then the answer — the closing peer sees a clean close, not a dropped connection.
@Suite(.timeLimit(.minutes(2))) struct CloseInsideFrameTests {
    /// A minute for closes: these tests send the rest of a frame after reading the gateway's close,
    /// and this process has stalled for longer than the default 5 s `close_timeout` between the two
    /// with both cores busy (the gateway then rightly dropped the connection: "I/O on closed
    /// channel" in a hogged run). The timeout itself is tested below with a fixture of its own.
    private func gateway(backend: Channel) async throws -> GatewayFixture {
        var server = GatewayFixture.patientServer
        server.closeTimeout = .seconds(60)
        return try await GatewayFixture.start(server: server) { _, _ in
            [RouteConfiguration(path: "/", backend: .webSocket(host: "127.0.0.1", port: backend.localAddress!.port!, path: nil, query: nil))]
        }
    }

    @Test func aClientClosingInsideAFrameToItGetsTheWholeFrameThenTheAnswer() async throws {
        let payload = pattern(1 << 20, seed: 7)
        let service = HalfFrameBackend(.finishesItsFrameAfterTheClose(payload: payload))
        let backend = try await TestServices.start(group: MultiThreadedEventLoopGroup.singleton) { service }
        defer { Task { try? await backend.close() } }
        let fixture = try await self.gateway(backend: backend)
        defer { Task { await fixture.stop() } }
        let (client, _) = try await fixture.client("/")

        // Half the frame is here and the rest waits for the close: the close lands inside the frame.
        try await eventually("half the frame to arrive") { client.inbox.state.withLockedValue { $0.buffer.readableBytes } >= payload.count / 2 }
        try await client.sendClose(4003, "leaving")

        let frame = try await client.readFrame(timeout: .seconds(20))
        #expect(frame.opcode == 2 && frame.fin)
        #expect(frame.payload.count == payload.count)
        #expect(frame.payload == payload)
        #expect(try await client.readFrame().closeCode == 4003)
        try await client.waitForEOF()
        // The client's code went on to the backend, whose frame was still finished.
        let closes = service.received.withLockedValue { $0.frames.filter { $0.opcode == 8 } }
        #expect(closes.map { $0.payload.prefix(2) } == [[0x0F, 0xA3]])  // 4003
    }

    @Test func aBackendClosingInsideAFrameToItGetsTheWholeFrameThenTheAnswer() async throws {
        let service = HalfFrameBackend(.closesInsideTheGatewaysFrame(code: 4004, after: 256 << 10))
        let backend = try await TestServices.start(group: MultiThreadedEventLoopGroup.singleton) { service }
        defer { Task { try? await backend.close() } }
        let fixture = try await self.gateway(backend: backend)
        defer { Task { await fixture.stop() } }
        let (client, _) = try await fixture.client("/")

        // The client sends half of a 1 MiB frame; the backend closes inside it, and the gateway
        // passes that close on to the client.
        let payload = pattern(1 << 20, seed: 9)
        var frame = TestClient.frame(2, payload)
        let half = frame.readableBytes - payload.count / 2
        guard let first = frame.readSlice(length: half) else { throw TestTimeout(what: "a frame to split") }
        try await client.send(first)
        #expect(try await client.readFrame(timeout: .seconds(20)).closeCode == 4004)

        // The client finishes its frame and answers: the backend gets the whole frame, then its answer.
        try await client.send(frame)
        try await client.sendClose(4004)
        try await client.waitForEOF()
        try await eventually("the backend's answer") { service.received.withLockedValue { $0.frames.contains { $0.opcode == 8 } } }
        let frames = service.received.withLockedValue { $0.frames }
        #expect(frames.map(\.opcode) == [2, 8])
        #expect(frames.first?.payload == payload)
        #expect(frames.last?.payload.prefix(2) == [0x0F, 0xA4])  // 4004
    }

    /// A peer that closes inside a frame and then stops reading cannot keep the connection: the
    /// gateway drops it after `close_timeout`.
    @Test func aClientThatClosesInsideAFrameAndStopsReadingIsDroppedAfterTheCloseTimeout() async throws {
        let payload = pattern(16 << 20, seed: 11)
        let service = HalfFrameBackend(.finishesItsFrameAfterTheClose(payload: payload))
        let backend = try await TestServices.start(group: MultiThreadedEventLoopGroup.singleton) { service }
        defer { Task { try? await backend.close() } }
        var server = GatewayFixture.patientServer
        server.closeTimeout = .seconds(1)
        let fixture = try await GatewayFixture.start(server: server) { _, _ in
            [RouteConfiguration(path: "/", backend: .webSocket(host: "127.0.0.1", port: backend.localAddress!.port!, path: nil, query: nil))]
        }
        defer { Task { await fixture.stop() } }
        let (client, _) = try await fixture.client("/", receiveBuffer: 64 << 10)
        // Taken now: once the gateway drops the connection (after a 1 s close_timeout, which a
        // stall of this process can outlast) the channel no longer knows its address.
        guard let clientPort = client.channel.localAddress?.port else { throw TestTimeout(what: "the client's port") }
        try await eventually("part of the frame to arrive") { client.inbox.state.withLockedValue { $0.buffer.readableBytes } >= 1 << 20 }
        try await client.channel.setOption(.autoRead, value: false).get()
        try await client.sendClose(4003)
        // The 15 MiB still to come cannot all sit in the socket buffers (the client's is fixed at
        // 64 KiB, the gateway's grows to tcp_wmem's maximum, 4 MiB here): the frame cannot end while
        // the client does not read. The gateway's end of the connection (this process's, in /proc)
        // leaves ESTABLISHED when it gives up; reading again then finds the end, not the rest.
        try await eventually("the gateway to drop the connection", timeout: .seconds(20)) {
            tcpState(localPort: fixture.port, remotePort: clientPort) != "01"
        }
        try? await client.channel.setOption(.autoRead, value: true).get()
        try await client.waitForEOF(timeout: .seconds(20))
        let received = client.inbox.state.withLockedValue { $0.buffer.readableBytes }
        #expect(received < payload.count, "the gateway dropped the connection before the frame ended")
    }
}

/// A close that is answered at once still waits for what is queued before it; a peer that closes
/// and stops reading cannot hold the connection that way either.
@Suite(.timeLimit(.minutes(2))) struct CloseWhileNotReadingTests {
    @Test func aClientThatClosesAndStopsReadingIsDroppedAfterTheCloseTimeout() async throws {
        var server = GatewayFixture.patientServer
        server.closeTimeout = .seconds(1)
        let fixture = try await GatewayFixture.start(server: server) { ws, _ in
            [RouteConfiguration(path: "/", backend: .webSocket(host: "127.0.0.1", port: ws, path: nil, query: nil))]
        }
        defer { Task { await fixture.stop() } }
        let (client, _) = try await fixture.client("/", receiveBuffer: 64 << 10)
        // Taken now: once the gateway drops the connection (after a 1 s close_timeout, which a
        // stall of this process can outlast) the channel no longer knows its address.
        guard let clientPort = client.channel.localAddress?.port else { throw TestTimeout(what: "the client's port") }
        try await client.channel.setOption(.autoRead, value: false).get()
        // 32 MiB of small messages echoed to a client that reads none of them (its receive buffer fixed
        // at 64 KiB): the gateway's way to it fills up, then the close.
        let message = TestClient.frame(2, pattern(1000))
        var batch = ByteBuffer()
        for _ in 0..<2048 { batch.writeImmutableBuffer(message) }
        for _ in 0..<16 { try await client.send(batch) }
        try await client.sendClose(1000)
        try await eventually("the gateway to drop the connection", timeout: .seconds(20)) {
            tcpState(localPort: fixture.port, remotePort: clientPort) != "01"
        }
        await client.close()
    }
}

/// The state (hex, "01" established) of this process's TCP socket between the two loopback ports;
/// nil once it is gone.
func tcpState(localPort: Int, remotePort: Int) -> Substring? {
    GatewayProcess.tcpSockets("self").first { $0.isLoopback(localPort: localPort, remotePort: remotePort) }?.state
}
