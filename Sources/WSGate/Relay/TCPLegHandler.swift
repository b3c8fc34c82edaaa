import Logging
import NIOCore

/// The byte-stream backend leg (TCP or Unix socket): WebSocket payload bytes go to the service as
/// they arrive, and every read from the service becomes one WebSocket message to the client.
///
/// TCP has no closing handshake: a client close shuts the connection after pending bytes are
/// written; the service's EOF becomes close 1000 and a reset 1011 on the client leg.
final class TCPLegHandler: ChannelDuplexHandler, RelayPartner {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let session: RelaySession
    private let messageType: TCPMessageType
    var partner: RelayPartner?
    private var context: ChannelHandlerContext?
    private var reads = ReadGate()
    private var closing = false
    private var sawEOF = false
    private var lastError: Error?
    /// In text mode: the start of a UTF-8 character split across reads (at most 3 bytes).
    private var textCarry: ByteBuffer?
    private var output = GatheredOutput()

    init(session: RelaySession, messageType: TCPMessageType) {
        self.session = session
        self.messageType = messageType
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !self.closing, let partner = self.partner else { return }
        let buffer = Self.unwrapInboundIn(data)
        switch self.messageType {
        case .binary:
            self.session.count(from: .backend, messages: 1, bytes: buffer.readableBytes)
            partner.relayFrame(opcode: .binary, fin: true, length: buffer.readableBytes)
            partner.relayPayload(buffer)
        case .text:
            self.session.count(from: .backend, messages: 0, bytes: buffer.readableBytes)
            self.relayText(buffer, to: partner)
        }
    }

    /// Sends a read as a text message, holding back a character cut by the read boundary; a read that
    /// is not UTF-8 goes as a binary message rather than being dropped.
    private func relayText(_ buffer: ByteBuffer, to partner: RelayPartner) {
        var validator = UTF8Validator()
        if let carry = self.textCarry { carry.withUnsafeReadableBytes { _ = validator.consume($0) } }
        buffer.withUnsafeReadableBytes { _ = validator.consume($0) }
        var send = buffer
        var opcode = WebSocketOpcode.text
        var carryOut: ByteBuffer?
        if !validator.isValidSoFar {
            opcode = .binary
        } else if !validator.isComplete {
            // Cut before the lead byte of the unfinished character (within the last 3 bytes).
            let bytes = buffer.readableBytesView
            var cut = bytes.endIndex
            while cut > bytes.startIndex, bytes.endIndex - cut < 4 {
                cut -= 1
                if bytes[cut] & 0xC0 != 0x80 { break }
            }
            if bytes.isEmpty || bytes[cut] & 0xC0 == 0x80 {
                // The unfinished character began in the carry: keep it all for the next read.
                var joined = ByteBufferAllocator().buffer(capacity: 4)
                if let carry = self.textCarry { joined.writeImmutableBuffer(carry) }
                joined.writeImmutableBuffer(buffer)
                self.textCarry = joined
                return
            }
            let keep = bytes.endIndex - cut
            send = buffer.getSlice(at: buffer.readerIndex, length: buffer.readableBytes - keep)!
            carryOut = buffer.getSlice(at: buffer.readerIndex + buffer.readableBytes - keep, length: keep)
        }
        let carry = self.textCarry
        self.textCarry = nil
        let length = (carry?.readableBytes ?? 0) + send.readableBytes
        if length > 0 {
            self.session.count(from: .backend, messages: 1, bytes: 0)
            partner.relayFrame(opcode: opcode, fin: true, length: length)
            if let carry { partner.relayPayload(carry) }
            if send.readableBytes > 0 { partner.relayPayload(send) }
        }
        if let carryOut {
            // Copied: a few bytes, and the read buffer must not be held for them.
            var copy = ByteBufferAllocator().buffer(capacity: carryOut.readableBytes)
            copy.writeImmutableBuffer(carryOut)
            self.textCarry = copy
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.session.noteActivity()
        self.partner?.relayFlush()
    }

    func read(context: ChannelHandlerContext) {
        self.reads.read(context, partnerIsWritable: self.partner?.isWritable ?? true)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { self.partner?.resumeReading() }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard case ChannelEvent.inputClosed = event else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        // The service finished sending. The client gets 1000; its answer closes this connection.
        self.sawEOF = true
        if !self.closing {
            self.partner?.relayFlush()
            self.partner?.relayClose(code: .normalClosure, reason: "backend closed the connection")
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        self.lastError = error
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !self.closing && !self.sawEOF {
            let why = self.lastError.map { "backend connection lost: \($0)" } ?? "backend connection lost"
            self.partner?.relayClose(code: .internalError, reason: why)
        }
        self.closing = true
        self.partner = nil
        self.session.legFinished()
        context.fireChannelInactive()
    }

    // MARK: RelayPartner

    func relayFrame(opcode: WebSocketOpcode, fin: Bool, length: Int) {}

    func relayMaskedPayload(_ payload: ByteBuffer, mask: WebSocketMask, offset: Int) {
        var clear = payload
        clear.withUnsafeMutableReadableBytesInPlace { mask.apply(to: $0, offset: offset) }
        self.relayPayload(clear)
    }

    func relayPayload(_ payload: ByteBuffer) {
        guard let context, !self.closing else { return }
        if payload.readableBytes <= GatheredOutput.copyLimit {
            self.output.append(reserving: payload.readableBytes) { $0.writeImmutableBuffer(payload) }
        } else {
            self.writeGathered(context)
            context.write(Self.wrapOutboundOut(payload), promise: nil)
        }
    }

    private func writeGathered(_ context: ChannelHandlerContext) {
        if let output = self.output.take() {
            context.write(Self.wrapOutboundOut(output), promise: nil)
        }
    }

    func relayFlush() {
        guard let context else { return }
        self.writeGathered(context)
        context.flush()
    }

    func relayClose(code: WebSocketCloseCode?, reason: String) {
        guard let context, !self.closing else { return }
        // Everything the client sent before its close still reaches the service.
        self.writeGathered(context)
        self.closing = true
        context.writeAndFlush(Self.wrapOutboundOut(context.channel.allocator.buffer(capacity: 0))).whenComplete { _ in
            context.close(promise: nil)
        }
    }

    var isWritable: Bool {
        self.context?.channel.isWritable ?? true
    }

    func resumeReading() {
        guard let context else { return }
        self.reads.resume(context)
    }
}
