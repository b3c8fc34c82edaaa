import NIOCore
import WSGate

/// One load-generating WebSocket client connection: opens with a real RFC 6455 handshake (the
/// `Sec-WebSocket-Accept` is checked), sends binary messages that carry their sequence number, and
/// checks every echoed byte. Echoes are checked as a byte stream, because a TCP backend may re-chunk
/// them; with `boundaries` each echoed message must also end exactly where a sent one did.
/// It runs over its own TCP connection (an HTTP/1.1 upgrade; it is then that channel's handler) or
/// over one stream of an ``H2EchoClient`` (RFC 8441). Used only on its channel's event loop.
final class EchoConnection: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// What the workload hears about.
    struct Events {
        var opened: (EchoConnection) -> Void = { _ in }
        /// An echo completed; the argument is when the message was due to be sent.
        var echoed: (EchoConnection, NIODeadline) -> Void = { _, _ in }
        var failed: (EchoConnection, Failure) -> Void = { _, _ in }
        /// The connection closed after a clean closing handshake (or a failure).
        var closed: (EchoConnection) -> Void = { _ in }
    }

    /// Where the frames go.
    enum Link {
        case channel(ChannelHandlerContext)
        case stream(H2EchoClient, Int32)
    }

    private enum State {
        case handshaking(key: String, response: ByteBuffer)
        /// Over HTTP/2: waiting for the extended CONNECT's 200.
        case opening
        case open
        case closing
        case done
    }

    private struct Outstanding {
        var sequence: UInt64
        var size: Int
        var due: NIODeadline
        /// The message itself when it is not the sequence pattern (JSON messages).
        var bytes: [UInt8]?
    }

    let size: Int
    /// Messages are JSON event objects (realistic for compression) instead of the byte pattern.
    private let json: Bool
    /// permessage-deflate offered and, when the server agrees, used for every message sent.
    private let offersCompression: Bool
    private var deflater: MessageDeflater?
    private var inflater: MessageInflater?
    private var inflating = false
    private var frameRemaining = 0
    private var frameFin = false
    /// Bytes on this client's wire, both directions, after the handshake.
    private(set) var wireBytes = 0
    private let boundaries: Bool
    private let host: String
    private let events: Events
    private var state: State
    private var decoder = FrameDecoder(role: .client, configuration: .init(maxMessageBytes: 1 << 30, validatesUTF8: false))
    private var outstanding = CircularBuffer<Outstanding>(initialCapacity: 16)
    private var offset = 0  // into the first outstanding message
    private var nextSequence: UInt64 = 0
    private var link: Link?
    /// ``Events/closed`` has been reported.
    private var closed = false
    private let allocator = ByteBufferAllocator()

    /// `overHTTP2`: the connection is a stream an ``H2EchoClient`` opens (its CONNECT is the handshake).
    init(host: String, size: Int, boundaries: Bool, json: Bool = false, compression: Bool = false, overHTTP2: Bool = false, events: Events) {
        self.host = host
        self.size = size
        self.json = json
        self.offersCompression = compression
        self.boundaries = boundaries
        self.events = events
        self.state = overHTTP2 ? .opening : .handshaking(key: WebSocketAccept.makeKey(), response: ByteBuffer())
    }

    var inFlight: Int { self.outstanding.count }

    func handlerAdded(context: ChannelHandlerContext) {
        self.link = .channel(context)
    }

    /// Over HTTP/2: the stream its client opened for it.
    func attach(to client: H2EchoClient, stream: Int32) {
        self.link = .stream(client, stream)
    }

    /// Over HTTP/2: the server answered the extended CONNECT with a 200.
    func streamOpened() {
        guard case .opening = self.state else { return }
        self.state = .open
        self.events.opened(self)
    }

    private func write(_ frame: ByteBuffer) {
        switch self.link {
        case .channel(let context): context.write(Self.wrapOutboundOut(frame), promise: nil)
        case .stream(let client, let stream): client.write(frame, stream: stream)
        case nil: break
        }
    }

    func channelActive(context: ChannelHandlerContext) {
        guard case .handshaking(let key, _) = self.state else { return }
        let request = "GET / HTTP/1.1\r\nHost: \(self.host)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: \(key)\r\nSec-WebSocket-Version: 13\r\n"
            + (self.offersCompression ? "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n" : "") + "\r\n"
        context.writeAndFlush(Self.wrapOutboundOut(context.channel.allocator.buffer(string: request)), promise: nil)
    }

    /// Sends one message (without flushing: call ``flush()`` after a batch).
    func send(due: NIODeadline = .now()) {
        guard case .open = self.state, !self.draining else { return }
        let sequence = self.nextSequence
        self.nextSequence += 1
        if self.json {
            self.sendJSON(sequence, due: due)
            return
        }
        let mask = self.masks.next()
        var frame = self.allocator.buffer(capacity: self.size + 14)
        FrameEncoder.writeHeader(into: &frame, fin: true, opcode: .binary, payloadLength: self.size, mask: mask)
        let start = frame.writerIndex - frame.readerIndex
        frame.writeWithUnsafeMutableBytes(minimumWritableBytes: self.size) { bytes in
            for index in 0..<self.size { bytes[index] = Self.expectedByte(sequence: sequence, at: index) }
            return self.size
        }
        frame.withUnsafeMutableReadableBytes { bytes in
            mask.apply(to: UnsafeMutableRawBufferPointer(rebasing: bytes[start...]), offset: 0)
        }
        self.outstanding.append(Outstanding(sequence: sequence, size: self.size, due: due))
        self.wireBytes += frame.readableBytes
        self.write(frame)
    }

    func flush() {
        switch self.link {
        case .channel(let context): context.flush()
        case .stream(let client, _): client.flush()
        case nil: break
        }
    }

    /// Drops the connection (resets the stream) without a closing handshake.
    func abort() {
        switch self.link {
        case .channel(let context): context.close(promise: nil)
        case .stream(let client, let stream): client.reset(stream: stream)
        case nil: break
        }
    }

    /// A text message like a live feed's: the same keys every time, values that move.
    static func jsonMessage(_ sequence: UInt64) -> [UInt8] {
        let price = 100 + Double(sequence % 997) / 8
        let text = #"{"seq":\#(sequence),"type":"trade","symbol":"\#(["ACME", "GLOBX", "INITECH", "UMBRELLA"][Int(sequence % 4)])","#
            + #""price":\#(price),"size":\#(100 + sequence % 37 * 25),"side":"\#(sequence % 3 == 0 ? "sell" : "buy")","#
            + #""venue":"XNAS","ts":"2026-11-21T10:\#(10 + sequence / 60 % 50):\#(10 + sequence % 50).\#(100 + sequence % 900)Z","flags":["regular","lit"]}"#
        return Array(text.utf8)
    }

    private func sendJSON(_ sequence: UInt64, due: NIODeadline) {
        let message = Self.jsonMessage(sequence)
        var payload = ByteBuffer(bytes: message)
        var compressed = false
        if let deflater = self.deflater {
            var output = ByteBuffer()
            do {
                try deflater.deflate(&payload, into: &output)
                try deflater.finishMessage(into: &output)
            } catch {
                return self.fail("client compression failed: \(error)")
            }
            payload = output
            compressed = true
        }
        let mask = self.masks.next()
        var frame = self.allocator.buffer(capacity: payload.readableBytes + 14)
        FrameEncoder.writeHeader(into: &frame, fin: true, opcode: .text, payloadLength: payload.readableBytes, mask: mask, compressed: compressed)
        mask.apply(to: &payload, offset: 0)
        frame.writeBuffer(&payload)
        self.wireBytes += frame.readableBytes
        self.outstanding.append(Outstanding(sequence: sequence, size: message.count, due: due, bytes: message))
        self.write(frame)
    }

    /// Sends nothing more and starts the closing handshake once every message sent has come back: a
    /// close sent while echoes are on their way races them (the gateway cannot answer a close in the
    /// middle of a frame it is relaying, so it drops the connection).
    func closeWhenDrained() {
        self.draining = true
        if self.outstanding.isEmpty { self.close() }
    }

    /// Starts the closing handshake (1000); ``Events/closed`` follows once the server answered and hung up.
    func close() {
        guard case .open = self.state else { return }
        self.state = .closing
        var payload = ByteBuffer()
        payload.writeInteger(UInt16(1000))
        self.write(FrameEncoder.controlFrame(opcode: .close, payload: payload, mask: self.masks.next(), allocator: self.allocator))
        self.flush()
    }

    /// Message bytes: the sequence number (big-endian) first, then a pattern that moves with it.
    static func expectedByte(sequence: UInt64, at index: Int) -> UInt8 {
        if index < 8 { return UInt8(truncatingIfNeeded: sequence >> (56 - 8 * UInt64(index))) }
        return UInt8(truncatingIfNeeded: sequence &+ UInt64(index))
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = Self.unwrapInboundIn(data)
        if case .handshaking(let key, var response) = self.state {
            response.writeBuffer(&buffer)
            guard let end = response.readableBytesView.firstRange(of: Array("\r\n\r\n".utf8)) else {
                if response.readableBytes > 8192 { self.fail("handshake response longer than 8 KiB") }
                self.state = .handshaking(key: key, response: response)
                return
            }
            let headEnd = end.upperBound - response.readerIndex
            let head = String(decoding: response.readableBytesView.prefix(headEnd), as: UTF8.self)
            guard head.hasPrefix("HTTP/1.1 101"), head.lowercased().contains("sec-websocket-accept: \(WebSocketAccept.value(forKey: key).lowercased())") else {
                self.fail("bad handshake response: \(head.split(separator: "\r\n").first ?? "")")
                return
            }
            response.moveReaderIndex(forwardBy: headEnd)
            buffer = response
            if self.offersCompression && head.lowercased().contains("sec-websocket-extensions: permessage-deflate") {
                self.deflater = MessageDeflater(windowBits: 15, level: 6, memoryLevel: 8, resetsEachMessage: false)
                self.inflater = MessageInflater(windowBits: 15, resetsEachMessage: false)
                self.decoder = FrameDecoder(role: .client, configuration: .init(maxMessageBytes: 1 << 30, validatesUTF8: false, allowsCompression: true))
            }
            self.state = .open
            self.events.opened(self)
        }
        self.receive(buffer)
    }

    /// Frames from the server (after the handshake).
    func receive(_ buffer: ByteBuffer) {
        var buffer = buffer
        self.wireBytes += buffer.readableBytes
        do {
            while let event = try self.decoder.next(from: &buffer) {
                switch event {
                case .dataFrame(let opcode, let fin, let length):
                    let expected: WebSocketOpcode = self.json ? .text : .binary
                    guard opcode == expected || opcode == .continuation else { return self.fail("echo came back as \(opcode)") }
                    if self.decoder.messageIsCompressed {
                        self.inflating = true
                        self.frameRemaining = length
                        self.frameFin = fin
                        if length == 0 && fin { try self.inflate(ByteBuffer()) }
                        continue
                    }
                    if self.json { continue }  // sizes vary: the byte stream check covers boundaries
                    // Every message here has the same size, so an echoed one must be exactly that long.
                    self.echoedMessageBytes += length
                    if self.boundaries && fin {
                        guard self.echoedMessageBytes == self.size else {
                            return self.fail("echoed message of \(self.echoedMessageBytes) bytes, sent \(self.size)")
                        }
                        self.echoedMessageBytes = 0
                    }
                case .payload(let payload):
                    if self.inflating {
                        self.frameRemaining -= payload.readableBytes
                        try self.inflate(payload)
                        continue
                    }
                    try self.verify(payload)
                case .close:
                    if case .closing = self.state {
                        self.state = .done
                        // Over HTTP/2 the client's side of the stream ends here; the server ends its own.
                        if case .stream(let client, let stream) = self.link { client.endStream(stream) }
                    } else {
                        return self.fail("the server closed the connection")
                    }
                case .maskedPayload, .ping, .pong:
                    break
                }
            }
        } catch let error as WebSocketProtocolError {
            self.fail("protocol error in the echo stream: \(error.reason)")
        } catch {
            self.fail("\(error)")
        }
    }

    /// Sends made while handling echoes go out once per read batch.
    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    /// Inflates compressed echo bytes (empty: only the end of a message) and checks them.
    private func inflate(_ payload: ByteBuffer) throws {
        guard let inflater = self.inflater else { throw Failure(description: "a compressed echo on a connection without compression") }
        let ends = self.frameRemaining == 0 && self.frameFin
        try inflater.inflate(payload, endsMessage: ends, chunkSize: 16 * 1024) { try self.verify($0) }
        if ends { self.inflating = false }
    }

    private var echoedMessageBytes = 0
    /// ``closeWhenDrained()`` was called.
    private var draining = false
    private var masks = MaskSequence()

    private func verify(_ payload: ByteBuffer) throws {
        var index = payload.readerIndex
        let end = payload.writerIndex
        while index < end {
            guard let head = self.outstanding.first else { throw Failure(description: "echo of a message that was never sent") }
            let count = min(head.size - self.offset, end - index)
            let ok = payload.withUnsafeReadableBytes { bytes in
                let base = index - payload.readerIndex
                if let expected = head.bytes {
                    for i in 0..<count where bytes[base + i] != expected[self.offset + i] { return false }
                    return true
                }
                for i in 0..<count where bytes[base + i] != Self.expectedByte(sequence: head.sequence, at: self.offset + i) {
                    return false
                }
                return true
            }
            guard ok else { throw Failure(description: "echoed bytes differ from message \(head.sequence)") }
            index += count
            self.offset += count
            if self.offset == head.size {
                self.offset = 0
                self.outstanding.removeFirst()
                self.events.echoed(self, head.due)
                if self.draining && self.outstanding.isEmpty { self.close() }
            }
        }
    }

    func fail(_ reason: String) {
        if case .done = self.state { return }
        self.state = .done
        self.events.failed(self, Failure(description: reason))
        self.abort()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.transportClosed()
    }

    /// The TCP connection closed, or (over HTTP/2) the stream.
    func transportClosed() {
        guard !self.closed else { return }
        self.closed = true
        switch self.state {
        case .done:
            break
        case .closing:
            self.state = .done
            self.events.failed(self, Failure(description: "connection dropped before the close handshake finished"))
        default:
            self.state = .done
            self.events.failed(self, Failure(description: "connection dropped"))
        }
        self.events.closed(self)
        self.link = nil
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        self.fail("\(error)")
    }
}

/// Masking keys for load: they only need to vary (RFC 6455's unpredictability protects browsers from
/// cache poisoning, not a benchmark), so a xorshift generator instead of a system call per message.
struct MaskSequence {
    private var state = UInt64.random(in: 1 ... .max)

    mutating func next() -> WebSocketMask {
        self.state ^= self.state << 13
        self.state ^= self.state >> 7
        self.state ^= self.state << 17
        let bits = self.state
        return WebSocketMask(UInt8(truncatingIfNeeded: bits), UInt8(truncatingIfNeeded: bits >> 8),
                             UInt8(truncatingIfNeeded: bits >> 16), UInt8(truncatingIfNeeded: bits >> 24))
    }
}
