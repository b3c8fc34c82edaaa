import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
@testable import WSGate

struct TestTimeout: Error, CustomStringConvertible {
    var what: String
    var description: String { "timed out waiting for \(self.what)" }
}

/// A raw TCP client that speaks WebSocket by hand, so tests control every byte the gateway sees
/// and check every byte it sends. Received bytes accumulate in an inbox the test reads from.
final class TestClient: @unchecked Sendable {
    struct Frame: Equatable {
        var fin: Bool
        var opcode: UInt8
        var payload: [UInt8]
        /// RSV1: a permessage-deflate compressed message (first frame).
        var compressed = false
        var closeCode: UInt16? { self.opcode == 8 && self.payload.count >= 2 ? UInt16(self.payload[0]) << 8 | UInt16(self.payload[1]) : nil }
        var text: String { String(decoding: self.payload, as: UTF8.self) }
    }

    final class Inbox: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let state = NIOLockedValueBox<(buffer: ByteBuffer, closed: Bool)>((ByteBuffer(), false))
        /// Written the moment the connection is up, from the event loop (immune to test-task starvation).
        var firstBytes: [UInt8] = []

        func channelActive(context: ChannelHandlerContext) {
            if !self.firstBytes.isEmpty {
                context.writeAndFlush(Self.wrapOutboundOut(context.channel.allocator.buffer(bytes: self.firstBytes)), promise: nil)
            }
            context.fireChannelActive()
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var incoming = Self.unwrapInboundIn(data)
            self.state.withLockedValue { _ = $0.buffer.writeBuffer(&incoming) }
        }

        func channelInactive(context: ChannelHandlerContext) {
            self.state.withLockedValue { $0.closed = true }
        }

        func errorCaught(context: ChannelHandlerContext, error: Error) {
            context.close(promise: nil)
        }
    }

    let channel: Channel
    let inbox: Inbox
    /// When the connection was made, read on its event loop: the awaiting test may resume much
    /// later on a busy machine.
    let connectedAt: NIODeadline

    private init(channel: Channel, inbox: Inbox, connectedAt: NIODeadline) {
        self.channel = channel
        self.inbox = inbox
        self.connectedAt = connectedAt
    }

    /// `from`: the local address to connect from (another loopback address plays another client IP).
    /// `receiveBuffer`: a fixed SO_RCVBUF, for a client that must not be able to take much while it
    /// does not read (the kernel's autotuning may otherwise grow it to tcp_rmem's maximum, 32 MiB on
    /// some machines).
    static func connect(port: Int, host: String = "127.0.0.1", from source: String? = nil, group: EventLoopGroup, sendingFirst firstBytes: [UInt8] = [],
                        receiveBuffer: Int? = nil) async throws -> TestClient {
        let inbox = Inbox()
        inbox.firstBytes = firstBytes
        var bootstrap = ClientBootstrap(group: group)
        if let source { bootstrap = bootstrap.bind(to: try SocketAddress(ipAddress: source, port: 0)) }
        if let receiveBuffer { bootstrap = bootstrap.channelOption(.socketOption(.so_rcvbuf), value: SocketOptionValue(receiveBuffer)) }
        let (channel, connectedAt) = try await bootstrap
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(inbox) }
            }
            .connect(host: host, port: port).map { ($0, NIODeadline.now()) }.get()
        return TestClient(channel: channel, inbox: inbox, connectedAt: connectedAt)
    }

    /// Connects and completes a handshake; fails unless the answer is 101 with the right accept.
    static func webSocket(port: Int, path: String, group: EventLoopGroup, headers: [String] = [], receiveBuffer: Int? = nil) async throws -> (TestClient, [String: String]) {
        let client = try await self.connect(port: port, group: group, receiveBuffer: receiveBuffer)
        let key = WebSocketAccept.makeKey()
        try await client.send(Self.handshake(path: path, key: key, extra: headers))
        let (status, responseHeaders) = try await client.readHead()
        guard status == 101, responseHeaders["sec-websocket-accept"] == WebSocketAccept.value(forKey: key) else {
            throw TestTimeout(what: "a valid 101 (got \(status) \(responseHeaders))")
        }
        return (client, responseHeaders)
    }

    static func handshake(path: String, key: String = WebSocketAccept.makeKey(), extra: [String] = []) -> String {
        // A Host among the extra headers replaces the default one.
        let host = extra.contains { $0.lowercased().hasPrefix("host:") } ? [] : ["Host: gateway.test"]
        return (["GET \(path) HTTP/1.1"] + host + ["Upgrade: websocket", "Connection: Upgrade",
                "Sec-WebSocket-Key: \(key)", "Sec-WebSocket-Version: 13"] + extra).joined(separator: "\r\n") + "\r\n\r\n"
    }

    func send(_ text: String) async throws {
        try await self.send(Array(text.utf8))
    }

    func send(_ bytes: [UInt8]) async throws {
        try await self.channel.writeAndFlush(self.channel.allocator.buffer(bytes: bytes))
    }

    func send(_ buffer: ByteBuffer) async throws {
        try await self.channel.writeAndFlush(buffer)
    }

    /// A masked client frame; the payload is masked with a fresh key.
    static func frame(_ opcode: UInt8, _ payload: [UInt8], fin: Bool = true, rsv1: Bool = false) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: payload.count + 14)
        let mask = WebSocketMask.random()
        FrameEncoder.writeHeader(into: &buffer, fin: fin, opcode: WebSocketOpcode(rawValue: opcode) ?? .binary, payloadLength: payload.count, mask: mask)
        // Opcodes the gateway must reject still need to reach it: patch the raw opcode in.
        buffer.setInteger((fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | opcode, at: 0, as: UInt8.self)
        var body = ByteBuffer(bytes: payload)
        mask.apply(to: &body, offset: 0)
        buffer.writeBuffer(&body)
        return buffer
    }

    func sendFrame(_ opcode: UInt8, _ payload: [UInt8], fin: Bool = true) async throws {
        try await self.send(Self.frame(opcode, payload, fin: fin))
    }

    func sendClose(_ code: UInt16, _ reason: String = "") async throws {
        try await self.sendFrame(8, [UInt8(code >> 8), UInt8(code & 0xFF)] + Array(reason.utf8))
    }

    /// Waits until `parse` can take something off the front of the inbox.
    func take<T>(_ what: String, timeout: TimeAmount = .seconds(10), _ parse: (inout ByteBuffer) -> T?) async throws -> T {
        let deadline = NIODeadline.now() + timeout
        while true {
            let (value, closed): (T?, Bool) = self.inbox.state.withLockedValue { state in
                var copy = state.buffer
                if let value = parse(&copy) {
                    state.buffer = copy
                    state.buffer.discardReadBytes()
                    return (value, state.closed)
                }
                return (nil, state.closed)
            }
            if let value { return value }
            if closed { throw TestTimeout(what: "\(what) (connection closed)") }
            if NIODeadline.now() > deadline { throw TestTimeout(what: what) }
            try await Task.sleep(nanoseconds: 2_000_000)
        }
    }

    func readHead(timeout: TimeAmount = .seconds(10)) async throws -> (Int, [String: String]) {
        let text: String = try await self.take("a response head", timeout: timeout) { buffer in
            guard let end = buffer.readableBytesView.firstRange(of: Array("\r\n\r\n".utf8)) else { return nil }
            let length = end.upperBound - buffer.readableBytesView.startIndex
            return buffer.readString(length: length)
        }
        let lines = text.split(separator: "\r\n")
        let status = Int(lines.first?.split(separator: " ").dropFirst().first ?? "") ?? 0
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return (status, headers)
    }

    /// Reads a whole response (head plus Content-Length body).
    func readResponse() async throws -> (Int, [String: String], String) {
        let (status, headers) = try await self.readHead()
        let length = Int(headers["content-length"] ?? "0") ?? 0
        let body = try await self.take("a response body") { $0.readString(length: length) }
        return (status, headers, body)
    }

    /// One server frame, which must be unmasked.
    func readFrame(timeout: TimeAmount = .seconds(10)) async throws -> Frame {
        try await self.take("a frame", timeout: timeout) { buffer in
            guard let head = Self.frameHead(buffer.readableBytesView) else { return nil }
            precondition(!head.masked, "server frames must not be masked")
            guard buffer.readableBytes >= head.size + head.length else { return nil }
            buffer.moveReaderIndex(forwardBy: head.size)
            let payload = buffer.readBytes(length: head.length)!
            return Frame(fin: head.b0 & 0x80 != 0, opcode: head.b0 & 0x0F, payload: payload, compressed: head.b0 & 0x40 != 0)
        }
    }

    /// A frame's first byte, whether it is masked, the size of its header up to the mask key, and
    /// its payload length: nil until the length field has all arrived.
    static func frameHead(_ view: ByteBufferView) -> (b0: UInt8, masked: Bool, size: Int, length: Int)? {
        guard view.count >= 2 else { return nil }
        let b0 = view[view.startIndex], b1 = view[view.startIndex + 1]
        var size = 2
        var length = Int(b1 & 0x7F)
        if length == 126 {
            guard view.count >= 4 else { return nil }
            length = Int(view[view.startIndex + 2]) << 8 | Int(view[view.startIndex + 3])
            size = 4
        } else if length == 127 {
            guard view.count >= 10 else { return nil }
            length = (2..<10).reduce(0) { $0 << 8 | Int(view[view.startIndex + $1]) }
            size = 10
        }
        return (b0, b1 & 0x80 != 0, size, length)
    }

    /// A whole data message (fragments joined), skipping pings and pongs; `answeringPings` answers
    /// each ping it skips, as a browser would, for a test that must stay alive on a short
    /// `ping_interval` while this process may stall.
    func readMessage(timeout: TimeAmount = .seconds(20), answeringPings: Bool = false) async throws -> Frame {
        var message: Frame?
        while true {
            let frame = try await self.readFrame(timeout: timeout)
            if frame.opcode == 9, answeringPings { try await self.sendFrame(10, frame.payload) }
            if frame.opcode == 9 || frame.opcode == 10 { continue }
            if frame.opcode == 8 { return frame }
            if message == nil {
                message = frame
            } else {
                message!.payload += frame.payload
            }
            if frame.fin {
                message!.fin = true
                return message!
            }
        }
    }

    /// True once the gateway has closed the TCP connection.
    func waitForEOF(timeout: TimeAmount = .seconds(10)) async throws {
        let deadline = NIODeadline.now() + timeout
        while !self.inbox.state.withLockedValue({ $0.closed }) {
            if NIODeadline.now() > deadline { throw TestTimeout(what: "the connection to close") }
            try await Task.sleep(nanoseconds: 2_000_000)
        }
    }

    func close() async {
        try? await self.channel.close()
    }
}
