import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing
@testable import WSGate

/// A service that reads slowly: at most 16 KiB per millisecond (about 16 MB/s), so the client outruns it by far.
final class SlowReaderHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    let block: [UInt8]
    let state = NIOLockedValueBox<(received: Int, mismatches: Int)>((0, 0))

    init(block: [UInt8]) { self.block = block }

    /// A loopback service on a free port whose one connection reads through this handler.
    func listen(group: EventLoopGroup) async throws -> Channel {
        try await ServerBootstrap(group: group)
            .childChannelOption(.autoRead, value: false)
            .childChannelOption(.maxMessagesPerRead, value: 1)
            .childChannelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 16 * 1024))
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(self) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
    }

    func channelActive(context: ChannelHandlerContext) {
        self.scheduleRead(context: context)
    }

    private func scheduleRead(context: ChannelHandlerContext) {
        context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(1)) {
            guard context.channel.isActive else { return }
            context.read()
            self.scheduleRead(context: context)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = Self.unwrapInboundIn(data)
        self.state.withLockedValue { state in
            // Spot-check one byte in 4096 against the sender's repeating block.
            var offset = (4096 - state.received % 4096) % 4096
            while offset < buffer.readableBytes {
                let position = state.received + offset
                if buffer.getInteger(at: buffer.readerIndex + offset, as: UInt8.self) != self.block[position % self.block.count] {
                    state.mismatches += 1
                }
                offset += 4096
            }
            state.received += buffer.readableBytes
        }
    }
}

@Suite(.timeLimit(.minutes(3))) struct BackpressureTests {
    /// 200 MB pushed as fast as the client can into a service that reads slowly: the gateway must
    /// stop reading the client instead of buffering, so its memory stays flat.
    @Test func gatewayMemoryStaysBoundedAgainstASlowBackend() async throws {
        let total = 200 * 1_000_000
        let frameSize = 1 << 20
        let block = pattern(frameSize, seed: 5)
        let slow = SlowReaderHandler(block: block)
        let group = MultiThreadedEventLoopGroup.singleton
        let service = try await slow.listen(group: group)
        defer { Task { try? await service.close() } }

        let gateway = try await GatewayProcess(arguments: ["--listen", "127.0.0.1:0", "--route", "/=tcp://127.0.0.1:\(service.localAddress!.port!)", "--threads", "1"])
        defer { gateway.stop() }
        try await gateway.waitUntilListening()

        let (client, _) = try await TestClient.webSocket(port: gateway.port, path: "/", group: group)
        let baseline = gateway.residentBytes
        let peak = NIOLockedValueBox(baseline)
        let sampler = Task {
            while !Task.isCancelled {
                let now = gateway.residentBytes
                peak.withLockedValue { $0 = max($0, now) }
                try? await Task.sleep(nanoseconds: 20_000_000)
            }
        }
        let started = NIODeadline.now()
        var sent = 0
        while sent < total {
            let size = min(frameSize, total - sent)
            // One frame at a time, each awaited: the client itself holds at most one frame.
            try await client.send(TestClient.frame(2, Array(block[0..<size])))
            sent += size
        }
        try await eventually("the slow service to receive all \(total) bytes", timeout: .seconds(120)) {
            slow.state.withLockedValue { $0.received } == total
        }
        sampler.cancel()
        let seconds = Double((NIODeadline.now() - started).nanoseconds) / 1e9
        let growth = peak.withLockedValue { $0 } - baseline
        print("backpressure: relayed \(total / 1_000_000) MB in \(String(format: "%.1f", seconds)) s to a slow reader; gateway RSS baseline \(baseline >> 10) KiB, peak \(peak.withLockedValue { $0 } >> 10) KiB, growth \(growth >> 10) KiB")
        #expect(slow.state.withLockedValue { $0.mismatches } == 0)
        #expect(growth < 32 << 20, "gateway RSS grew by \(growth >> 20) MiB while relaying")
        await client.close()
    }
}

/// A service that never reads: whatever is sent to it waits in kernel buffers, and then in the sender.
final class NonReadingService: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    let connected = NIOLockedValueBox(false)

    func handlerAdded(context: ChannelHandlerContext) {
        try? context.channel.syncOptions?.setOption(.autoRead, value: false)
    }

    func channelActive(context: ChannelHandlerContext) {
        self.connected.withLockedValue { $0 = true }
    }
}

@Suite(.timeLimit(.minutes(2))) struct ServiceThatStopsReadingTests {
    /// A client fills the way to a service that reads nothing, then is reset. The gateway's last flush
    /// toward the service can never complete; it must still close the service's connection (after
    /// `close_timeout`, 5 s by default) instead of holding it, and the bytes queued for it, for good.
    @Test func itsConnectionIsClosedAfterTheClientLeaves() async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        let service = NonReadingService()
        let listener = try await TestServices.start(group: group) { service }
        defer { Task { try? await listener.close() } }
        let gateway = try await GatewayProcess(arguments: ["--listen", "127.0.0.1:0", "--route", "/=tcp://127.0.0.1:\(listener.localAddress!.port!)", "--threads", "1"])
        defer { gateway.stop() }
        try await gateway.waitUntilListening()

        let (client, _) = try await TestClient.webSocket(port: gateway.port, path: "/", group: group)
        try await eventually("the gateway to connect to the service") { service.connected.withLockedValue { $0 } }
        // Far more than the kernel buffers and the gateway's write queue hold: the sends stall once
        // the gateway stops reading the client.
        let block = [UInt8](repeating: 0x5A, count: 1 << 20)
        let pushing = Task {
            for _ in 0..<64 { try await client.send(TestClient.frame(2, block)) }
        }
        try await Task.sleep(for: .seconds(2))
        let servicePort = listener.localAddress!.port!
        #expect(gateway.sockets(toPort: servicePort) == 1, "the count sees the gateway's connection to the service")
        // A reset, as from a client whose host went away: a FIN would wait behind the bytes the
        // gateway is not reading, and the gateway would never hear of it.
        if let provider = client.channel as? SocketOptionProvider {
            try await provider.setSoLinger(linger(l_onoff: 1, l_linger: 0)).get()
        }
        await client.close()
        _ = await pushing.result
        // Seen from the gateway: the service reads nothing, so it would not notice the close either.
        try await eventually("the gateway to close its connection to the service", timeout: .seconds(20)) {
            gateway.sockets(toPort: servicePort) == 0
        }
    }
}
