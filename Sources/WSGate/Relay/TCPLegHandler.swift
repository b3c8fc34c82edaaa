import Logging
import NIOCore

/// The byte-stream backend leg (TCP or Unix socket): WebSocket payload bytes go to the service as
/// they arrive, and the service's bytes become WebSocket messages to the client — one per read
/// (`framing: raw`), per line or per length-prefixed record (see ``TCPFraming``).
///
/// TCP has no closing handshake: a client close shuts the connection after pending bytes are
/// written; the service's EOF becomes close 1000 and a reset 1011 on the client leg.
final class TCPLegHandler: ChannelDuplexHandler, RelayPartner {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let session: ByteStreamLegOwner
    private let messageType: TCPMessageType
    private let invalidUTF8: InvalidUTF8Policy
    var partner: RelayPartner?
    private var context: ChannelHandlerContext?
    private var reads = ReadGate()
    private var closing = false
    private var sawEOF = false
    private var lastError: Error?
    /// In text mode: the start of a UTF-8 character split across reads (at most 3 bytes).
    private var textCarry: ByteBuffer?
    private var output = GatheredOutput()
    /// Service → client framing state, and client → service.
    private var lines: LineSplitter?
    private var records: RecordSplitter?
    /// A text record being collected, to be checked whole before it goes (bounded by the limit).
    private var textRecord: ByteBuffer?
    private var textRecordRemaining = 0
    private var clientFramer: ClientMessageFramer

    init(session: ByteStreamLegOwner, route: RouteConfiguration) {
        self.session = session
        self.messageType = route.messageType
        self.invalidUTF8 = route.invalidUTF8
        self.clientFramer = ClientMessageFramer(route.framing, maxMessageBytes: route.limits.maxMessageBytes)
        switch route.framing {
        case .raw: break
        case .lines(let settings): self.lines = LineSplitter(settings)
        case .lengthPrefixed(let prefix):
            self.records = RecordSplitter(prefix.kind, limit: min(prefix.maxMessageBytes ?? route.limits.maxMessageBytes, prefix.kind.maximum))
        }
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    /// After the channel closed (NIO removes handlers once `channelInactive` has run), the link to the
    /// other leg goes with the context (GlueHandler's pattern): a late call in finds no context, and
    /// nothing goes out through a removed handler.
    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        self.partner = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !self.closing, let partner = self.partner else { return }
        let buffer = Self.unwrapInboundIn(data)
        if self.lines != nil {
            self.session.count(from: .backend, messages: 0, bytes: buffer.readableBytes)
            do {
                try self.lines?.receive(buffer) { line in self.relayMessage(line.held, line.rest, to: partner) }
            } catch {
                if case .lineTooLong(let limit) = error { self.fail(.messageTooBig, "backend sent a line longer than \(limit) bytes", context: context) }
            }
            return
        }
        if self.records != nil {
            self.session.count(from: .backend, messages: 0, bytes: buffer.readableBytes)
            do {
                try self.records?.receive(buffer) { event in self.relayRecord(event, to: partner) }
            } catch {
                if case .recordTooLong(let length, let limit) = error {
                    self.fail(.messageTooBig, "backend sent a \(length)-byte record (limit \(limit))", context: context)
                }
            }
            return
        }
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
            if self.invalidUTF8 == .close, let context = self.context {
                self.fail(.invalidPayload, "backend sent bytes that are not UTF-8 on a text route", context: context)
                return
            }
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
            send = buffer.getSlice(at: buffer.readerIndex, length: buffer.readableBytes - keep) ?? ByteBuffer()  // keep ≤ readable: always a slice
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

    /// One whole message (a line, or a checked text record) in at most two pieces.
    private func relayMessage(_ head: ByteBuffer?, _ rest: ByteBuffer, to partner: RelayPartner) {
        guard !self.closing else { return }
        var opcode = WebSocketOpcode.binary
        if self.messageType == .text {
            var validator = UTF8Validator()
            if let head { head.withUnsafeReadableBytes { _ = validator.consume($0) } }
            rest.withUnsafeReadableBytes { _ = validator.consume($0) }
            if validator.isComplete {
                opcode = .text
            } else if self.invalidUTF8 == .close, let context = self.context {
                self.fail(.invalidPayload, "backend sent bytes that are not UTF-8 on a text route", context: context)
                return
            }
        }
        self.session.count(from: .backend, messages: 1, bytes: 0)
        partner.relayFrame(opcode: opcode, fin: true, length: (head?.readableBytes ?? 0) + rest.readableBytes)
        if let head { partner.relayPayload(head) }
        if rest.readableBytes > 0 { partner.relayPayload(rest) }
    }

    /// Binary records stream through as they arrive; text records are collected and checked first.
    private func relayRecord(_ event: RecordSplitter.Event, to partner: RelayPartner) {
        guard !self.closing else { return }
        switch (event, self.messageType) {
        case (.start(let length), .binary):
            self.session.count(from: .backend, messages: 1, bytes: 0)
            partner.relayFrame(opcode: .binary, fin: true, length: length)
        case (.bytes(let piece), .binary):
            partner.relayPayload(piece)
        case (.start(let length), .text):
            self.textRecord = ByteBufferAllocator().buffer(capacity: min(length, 64 * 1024))
            self.textRecordRemaining = length
            if length == 0 { self.finishTextRecord(to: partner) }
        case (.bytes(var piece), .text):
            self.textRecordRemaining -= piece.readableBytes
            self.textRecord?.writeBuffer(&piece)
            if self.textRecordRemaining == 0 { self.finishTextRecord(to: partner) }
        }
    }

    private func finishTextRecord(to partner: RelayPartner) {
        guard let record = self.textRecord else { return }
        self.textRecord = nil
        self.relayMessage(nil, record, to: partner)
    }

    /// A framing limit or rule broken by the service: the client hears why, the service is cut off.
    private func fail(_ code: WebSocketCloseCode, _ reason: String, context: ChannelHandlerContext) {
        guard !self.closing else { return }
        self.session.logger.info("closing session: \(reason)", metadata: ["client": "\(self.session.clientAddress)", "route": "\(self.session.route)"])
        self.partner?.relayFlush()
        self.partner?.relayClose(code: code, reason: reason)
        self.closing = true
        context.close(promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.session.noteActivity(at: .now())
        self.partner?.relayFlush()
    }

    func read(context: ChannelHandlerContext) {
        if self.reads.read(allowed: self.partner?.isWritable ?? true) { context.read() }
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

    func relayFrame(opcode: WebSocketOpcode, fin: Bool, length: Int) {
        guard let context, !self.closing else { return }
        do {
            try self.clientFramer.frame(opcode: opcode, fin: fin, length: length) { self.write($0, context: context) }
        } catch {
            self.clientMessageTooLong(error, context: context)
        }
    }

    func relayMaskedPayload(_ payload: ByteBuffer, mask: WebSocketMask, offset: Int) {
        var clear = payload
        clear.withUnsafeMutableReadableBytesInPlace { mask.apply(to: $0, offset: offset) }
        self.relayPayload(clear)
    }

    func relayPayload(_ payload: ByteBuffer) {
        guard let context, !self.closing else { return }
        do {
            try self.clientFramer.payload(payload) { self.write($0, context: context) }
        } catch {
            self.clientMessageTooLong(error, context: context)
        }
    }

    private func clientMessageTooLong(_ error: ClientMessageFramer.Failure, context: ChannelHandlerContext) {
        guard case .messageTooLong(let limit) = error else { return }
        self.fail(.messageTooBig, "client message longer than \(limit) bytes, the most the service's length prefix allows here", context: context)
    }

    private func write(_ payload: ByteBuffer, context: ChannelHandlerContext) {
        if payload.readableBytes <= GatheredOutput.copyLimit {
            self.gather(reserving: payload.readableBytes) { $0.writeImmutableBuffer(payload) }
        } else {
            self.writeGathered(context)
            context.write(Self.wrapOutboundOut(payload), promise: nil)
        }
    }

    /// Appends to what is gathered for the peer, on a local moved out of ``output`` and back (see
    /// ``GatheredOutput/appendable(_:reserving:)``).
    @discardableResult
    @inline(__always)
    private func gather<T>(reserving bytes: Int, _ body: (inout ByteBuffer) -> T) -> T {
        var buffer = GatheredOutput.appendable(self.output.moveOut(), reserving: bytes)
        defer { self.output.moveBack(buffer) }
        return body(&buffer)
    }

    private func writeGathered(_ context: ChannelHandlerContext) {
        if let output = self.output.moveOut(), output.readableBytes > 0 {
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
        // The flush is bounded by the close timeout: a service that does not read (it is stuck
        // writing to us, and nothing reads it any more) would otherwise hold the connection forever.
        let deadline = context.eventLoop.assumeIsolated().scheduleTask(in: self.session.closeTimeout) { [weak self] in
            self?.context?.close(promise: nil)
        }
        context.writeAndFlush(Self.wrapOutboundOut(context.channel.allocator.buffer(capacity: 0))).assumeIsolated().whenComplete { [weak self] _ in
            deadline.cancel()
            self?.context?.close(promise: nil)
        }
    }

    var isWritable: Bool {
        self.context?.channel.isWritable ?? true
    }

    /// A byte stream has no frames to finish.
    var awaitsFrameEnd: Bool { false }

    func resumeReading() {
        guard let context else { return }
        if self.reads.resume() { context.read() }
    }
}
