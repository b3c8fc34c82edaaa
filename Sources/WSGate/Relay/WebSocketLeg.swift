import Logging
import NIOCore

/// One WebSocket leg of a session, as a full endpoint: the client leg speaks as a server (expects
/// masked frames, sends unmasked ones), the backend leg as a client (masks with fresh keys).
///
/// Data frames are relayed as they stream in, header first, payload slices after, so opcodes,
/// fragmentation and FIN reach the other side unchanged and no message is ever buffered. Pings are
/// answered on this hop. Each hop runs its own closing handshake: a close from this peer is answered
/// here at once and passed on to the other leg, which closes its own peer with the same code.
///
/// It knows nothing of what carries its bytes (``LegTransport``): a socket for HTTP/1.1 and
/// backends, a stream for HTTP/2.
final class WebSocketLeg: RelayPartner {
    private let side: RelaySession.Side
    private let session: RelaySession
    private var decoder: FrameDecoder
    var partner: RelayPartner?
    /// Strong, not weak (a weak reference puts every retain of the transport on the slow side-table
    /// path): the transport owns this leg and clears the reference when it goes, which breaks the
    /// cycle. A transport that is gone but still referenced only finds its channel closed.
    var transport: LegTransport?

    /// This hop's closing handshake; what an event means in each of its states is decided there.
    private var handshake: WebSocketCloseHandshake
    private var closeTimer: Scheduled<Void>?
    private var needsFlush = false
    /// Frames other than pongs arrived in this read batch (they count as activity).
    private var sawTraffic = false

    /// The frame being relayed to this leg's peer: masks are per frame, payload comes in slices.
    private var outgoingMask: WebSocketMask?
    private var outgoingOffset = 0
    private var outgoingRemaining = 0
    private var output = GatheredOutput()
    /// A ping that arrived while a frame to this peer was half written or its transport was full
    /// (only the latest needs an answer).
    private var pendingPong: ByteBuffer?
    /// permessage-deflate with this leg's peer (client legs only).
    private let compression: LegCompression?
    /// Reads that arrived while decoding was paused (the other leg filled up while inflating, or
    /// the rate limit): at most NIO's reads of one readable event, or one HTTP/2 stream window.
    private var heldReads: [ByteBuffer] = []
    /// The route's limits on what this leg's peer sends (client legs only); nil once closing.
    private var rateLimit: SessionRateLimit?
    private var rateLimitTimer: Scheduled<Void>?

    /// `keepsMasked`: the partner is a WebSocket leg that masks again, so payload may reach it still
    /// masked (one XOR pass with both keys instead of two).
    init(side: RelaySession.Side, session: RelaySession, maxMessageBytes: Int, maxFrameBytes: Int? = nil, keepsMasked: Bool = false, compression: LegCompression? = nil,
         rateLimit: SessionRateLimit? = nil) {
        self.side = side
        self.session = session
        self.compression = compression
        self.rateLimit = rateLimit
        self.handshake = WebSocketCloseHandshake(role: side == .client ? .server : .client)
        // The client leg is judged as a server (strict UTF-8); backend text is the backend's business.
        self.decoder = FrameDecoder(
            role: side == .client ? .server : .client,
            configuration: .init(maxMessageBytes: maxMessageBytes, validatesUTF8: side == .client, keepsMasked: keepsMasked,
                                 allowsCompression: compression != nil, maxFrameBytes: maxFrameBytes)
        )
    }

    private var masksOutgoing: Bool { self.side == .backend }

    /// Starts reading once the session is wired up.
    func start() {
        self.transport?.startReading()
    }

    // MARK: Transport events

    func receive(_ data: ByteBuffer) {
        guard self.handshake.readsFromPeer, let transport = self.transport else { return }
        // Held reads not yet decoded (a lifted rate limit's are, on the next loop turn) go first.
        if self.decodingPaused || !self.heldReads.isEmpty {
            self.heldReads.append(data)
            return
        }
        self.decode(data, transport: transport)
    }

    /// Inflating waits for the other leg, or the rate limit for time: what arrives is held.
    private var decodingPaused: Bool {
        self.compression?.inbound.isPaused == true || self.isThrottled
    }

    /// Reads paused by the rate limit (see ``SessionLiveness/probeThrottledClient(at:)``).
    var isThrottled: Bool { self.rateLimit?.isPaused == true }

    /// Whether the transport may read more: the other leg can take it and the rate limit allows.
    var mayRead: Bool {
        !self.isThrottled && (self.partner?.isWritable ?? true)
    }

    private func decode(_ data: ByteBuffer, transport: LegTransport) {
        var buffer = data
        // Counted per read, not per frame: the session is another object to touch.
        var messages = 0
        var bytes = 0
        /// Pongs answer our liveness pings; they do not keep an idle session open.
        var pongsOnly = true
        defer {
            self.session.count(from: self.side, messages: messages, bytes: bytes)
            if !pongsOnly { self.sawTraffic = true }
        }
        // One clock read per read; the budget is then checked before each frame or payload slice.
        let limited = self.rateLimit != nil
        if limited { self.rateLimit?.refill(at: .now()) }
        do {
            while true {
                if limited, self.rateLimit?.allows(atFrameStart: self.decoder.isAtFrameStart) == false {
                    if buffer.readableBytes > 0 { self.heldReads.insert(buffer, at: 0) }
                    self.pauseForRateLimit(transport)
                    return
                }
                let event: FrameDecoder.Event?
                if limited, let allowance = self.rateLimit?.byteAllowance, allowance < buffer.readableBytes {
                    // The decoder sees only what the byte budget covers; the loop comes back for the rest.
                    var window = buffer.readSlice(length: allowance) ?? ByteBuffer()
                    event = try self.decoder.next(from: &window)
                    buffer.moveReaderIndex(to: buffer.readerIndex - window.readableBytes)
                    if event == nil { continue }  // a header split by the window: the next one finishes it
                } else {
                    event = try self.decoder.next(from: &buffer)
                }
                guard let event else { break }
                if case .pong = event {} else { pongsOnly = false }
                switch event {
                case .dataFrame(let opcode, let fin, let length):
                    if fin {
                        messages += 1
                        if limited { self.rateLimit?.messageArrived() }
                    }
                    if let compression = self.compression, self.decoder.messageIsCompressed {
                        if compression.inbound.frameStarted(opcode: opcode, fin: fin, length: length) {
                            guard try self.finishInflatedMessage(compression) else {
                                self.heldReads.insert(buffer, at: 0)
                                return
                            }
                        }
                        continue
                    }
                    if self.handshake.sendsToPeer { self.partner?.relayFrame(opcode: opcode, fin: fin, length: length) }
                case .payload(let payload):
                    bytes += payload.readableBytes
                    if limited { self.rateLimit?.payloadArrived(payload.readableBytes) }
                    if let compression = self.compression, self.decoder.messageIsCompressed {
                        var input = payload
                        compression.inbound.payloadArrived(input.readableBytes)
                        guard try self.inflateFrameData(&input, compression) else {
                            self.heldReads.insert(buffer, at: 0)
                            return
                        }
                        continue
                    }
                    if self.handshake.sendsToPeer || self.partnerAwaitsFrameEnd { self.partner?.relayPayload(payload) }
                case .maskedPayload(let payload, let mask, let offset):
                    bytes += payload.readableBytes
                    if limited { self.rateLimit?.payloadArrived(payload.readableBytes) }
                    if self.handshake.sendsToPeer || self.partnerAwaitsFrameEnd { self.partner?.relayMaskedPayload(payload, mask: mask, offset: offset) }
                case .ping(let payload):
                    if self.handshake.sendsToPeer { self.answerPing(payload, transport: transport) }
                case .pong:
                    break
                case .close(let code, let reason):
                    self.peerClosed(code: code, reason: reason, transport: transport)
                    return
                }
            }
        } catch {
            self.failReceiving(error, transport: transport)
        }
    }

    /// This hop is closing, but the other leg's peer closed inside a frame this side was relaying to
    /// it: the rest of that frame still goes through, so its answer can follow (only read off the
    /// hot path, once this hop has stopped sending).
    private var partnerAwaitsFrameEnd: Bool {
        self.partner?.awaitsFrameEnd ?? false
    }

    /// Protocol errors close with their own code; anything else can only come from zlib (1011).
    private func failReceiving(_ error: Error, transport: LegTransport) {
        let protocolError = error as? WebSocketProtocolError ?? WebSocketProtocolError(.internalError, "decompression failed: \(error)")
        self.fail(protocolError, transport: transport)
    }

    // MARK: permessage-deflate, client to gateway

    /// Inflates compressed payload of the current frame and relays it; ends the message after its
    /// last frame. False: the other leg is full, inflating paused with `input` left (resumed from
    /// ``resumeReading()``).
    private func inflateFrameData(_ input: inout ByteBuffer, _ compression: LegCompression) throws -> Bool {
        guard try self.inflateAndRelay(&input, compression) else {
            self.pauseInflating(input, inTail: false, compression)
            return false
        }
        if compression.inbound.messageComplete {
            return try self.finishInflatedMessage(compression)
        }
        return true
    }

    /// Feeds the message tail (RFC 7692 §7.2.2), or what is left of it after a pause, through, then
    /// ends the message with an empty final frame.
    private func finishInflatedMessage(_ compression: LegCompression, tail: ByteBuffer? = nil) throws -> Bool {
        var tail = tail ?? compression.inflater.messageTail()
        guard try self.inflateAndRelay(&tail, compression) else {
            self.pauseInflating(tail, inTail: true, compression)
            return false
        }
        let opcode = try compression.inbound.finish()
        compression.inflater.messageFinished()
        if self.handshake.sendsToPeer {
            self.partner?.relayFrame(opcode: opcode, fin: true, length: 0)
        }
        return true
    }

    private func pauseInflating(_ input: ByteBuffer, inTail: Bool, _ compression: LegCompression) {
        compression.inbound.pause(inTail: inTail)
        compression.pausedInput = input
    }

    /// Inflates `input` in bounded chunks, each relayed as a frame of the message (after the
    /// message's checks on size and UTF-8); stops early (false) when the other leg cannot take more.
    private func inflateAndRelay(_ input: inout ByteBuffer, _ compression: LegCompression) throws -> Bool {
        while true {
            var output = ByteBufferAllocator().buffer(capacity: LegCompression.chunkSize)
            let done = try compression.inflater.inflate(&input, into: &output)
            if output.readableBytes > 0 {
                let opcode = try compression.inbound.inflated(output)
                if self.handshake.sendsToPeer, let partner = self.partner {
                    partner.relayFrame(opcode: opcode, fin: false, length: output.readableBytes)
                    partner.relayPayload(output)
                }
            }
            if done { return true }
            if !(self.partner?.isWritable ?? true) { return false }
        }
    }

    /// The other leg drained: finish the paused inflation, then the reads held meanwhile.
    private func resumeInflating(_ compression: LegCompression, transport: LegTransport) {
        guard let inTail = compression.inbound.resume() else { return }
        var input = compression.pausedInput
        compression.pausedInput = ByteBuffer()
        do {
            let finished = inTail
                ? try self.finishInflatedMessage(compression, tail: input)
                : try self.inflateFrameData(&input, compression)
            guard finished else {
                self.flushPartnerSoon(transport)
                return
            }
        } catch {
            self.failReceiving(error, transport: transport)
            return
        }
        self.decodeHeldReads(transport)
        if self.decodingPaused {
            self.flushPartnerSoon(transport)
        } else {
            self.partner?.relayFlush()
        }
    }

    /// Decodes the reads held while decoding was paused, in order, until it pauses again (a read
    /// cut short goes back to the front of the list).
    private func decodeHeldReads(_ transport: LegTransport) {
        while !self.decodingPaused, !self.heldReads.isEmpty, self.handshake.readsFromPeer {
            self.decode(self.heldReads.removeFirst(), transport: transport)
        }
    }

    // MARK: Rate limit (client legs)

    /// The budget ran out: no more decoding or reading until it has refilled.
    private func pauseForRateLimit(_ transport: LegTransport) {
        guard self.rateLimitTimer == nil, let wait = self.rateLimit?.pause(atFrameStart: self.decoder.isAtFrameStart) else { return }
        self.session.metrics.throttled.increment()
        self.rateLimitTimer = transport.eventLoop.assumeIsolated().scheduleTask(in: wait) { [weak self] in
            self?.rateLimitWaited()
        }
    }

    private func rateLimitWaited() {
        self.rateLimitTimer = nil
        guard let transport = self.transport else { return }
        guard self.rateLimit?.resume(at: .now(), atFrameStart: self.decoder.isAtFrameStart) != false else {
            self.pauseForRateLimit(transport)
            return
        }
        self.resumeDecoding(transport)
    }

    /// The rate limit let go: decode what was held, as a read batch of its own, then read again if
    /// the other leg can take more (else its drain resumes us).
    private func resumeDecoding(_ transport: LegTransport) {
        self.decodeHeldReads(transport)
        self.readComplete()
        if !self.decodingPaused, self.mayRead { transport.resumeReading() }
    }

    /// Closing: what the peer still sends is only its side of the closing handshake, read at once.
    private func liftRateLimit(_ transport: LegTransport) {
        guard self.rateLimit != nil else { return }
        let wasPaused = self.isThrottled
        self.rateLimit = nil
        self.rateLimitTimer?.cancel()
        self.rateLimitTimer = nil
        guard wasPaused else { return }
        // Not from inside the close that got us here: held reads may answer it.
        transport.eventLoop.assumeIsolated().execute { [weak self] in
            guard let self, let transport = self.transport else { return }
            self.resumeDecoding(transport)
        }
    }

    /// Paused again while resuming, which runs inside the other leg's flush: flush what was relayed
    /// from a fresh task, so the next drain resumes us again without the stack growing each round.
    private func flushPartnerSoon(_ transport: LegTransport) {
        transport.eventLoop.assumeIsolated().execute { [weak self] in
            self?.partner?.relayFlush()
        }
    }

    /// End of a read batch: one flush for the partner, one for our own control frames.
    func readComplete() {
        // One clock read per batch serves both the liveness and the idle bookkeeping.
        let now = NIODeadline.now()
        if self.side == .client { self.session.heardFromClient(at: now) }
        if self.sawTraffic {
            self.sawTraffic = false
            self.session.noteActivity(at: now)
        }
        self.partner?.relayFlush()
        if self.needsFlush, let transport = self.transport {
            self.needsFlush = false
            self.flushOutput(transport)
        }
    }

    func transportFailed(_ error: Error) {
        self.session.logger.debug("\(self.side.rawValue) connection error: \(error)", metadata: ["client": "\(self.session.clientAddress)"])
    }

    /// The connection or stream is gone.
    func transportClosed() {
        let action = self.handshake.transportClosed()
        guard action != .none else { return }
        self.closeTimer?.cancel()
        self.rateLimitTimer?.cancel()
        self.rateLimitTimer = nil
        self.heldReads.removeAll()
        if action == .vanished {
            // The peer vanished without a close frame.
            switch self.side {
            case .client:
                self.session.recordClientClose(code: .abnormalClosure, initiator: "client", reason: "connection dropped without a close frame")
                self.partner?.relayPeerVanished()
            case .backend:
                self.partner?.relayClose(code: .internalError, reason: "backend connection lost")
            }
        } else {
            // This hop's closing handshake ran (or was cut short). A partner still open ends too: a
            // TCP service that closed its side first is waiting for exactly this (for WebSocket
            // partners, which run their own handshake, it changes nothing).
            self.partner?.relayClose(code: .normalClosure, reason: "\(self.side.rawValue) connection closed")
        }
        self.partner = nil
        self.session.legFinished()
    }

    // MARK: Closing

    /// The peer sent a close frame.
    private func peerClosed(code: WebSocketCloseCode?, reason: String, transport: LegTransport) {
        switch self.handshake.peerClosed(code: code, midFrame: self.outgoingRemaining > 0) {
        case .none:
            return
        case .completed:
            break  // the answer to our close: this hop's handshake is complete
        case .answerAndPassOn:
            if self.side == .client {
                self.session.recordClientClose(code: code, initiator: "client", reason: reason)
            }
            self.sendClose(code: code, reason: "", transport: transport)
            // Tell the other side before closing: closing may end this leg at once, letting go of the partner.
            self.partner?.relayClose(code: code, reason: reason)
        case .passOnAndAnswerAfterFrame:
            if self.side == .client {
                self.session.recordClientClose(code: code, initiator: "client", reason: reason)
            }
            // The other leg keeps passing the current frame's payload (``awaitsFrameEnd``); the
            // answer goes when it ends (``relay(_:xoring:)``), or the connection is dropped.
            self.partner?.relayClose(code: code, reason: reason)
            self.writeGathered(transport)
            self.dropAfterCloseTimeout(transport)
            return
        }
        self.closeWhenFlushed(transport)
    }

    /// The frame half written when the peer closed has ended: its answer goes now.
    private func answerOwedClose(_ transport: LegTransport) {
        guard case .answer(let code) = self.handshake.frameFinished() else { return }
        self.sendClose(code: code, reason: "", transport: transport)
        self.closeWhenFlushed(transport)
    }

    /// Closes once what is queued has gone — or after `close_timeout`, if the peer does not read it.
    /// A backend whose closes were exchanged closes the connection itself (it is the server): its
    /// end of stream closes this side (``WebSocketLegHandler``), or `close_timeout` does.
    private func closeWhenFlushed(_ transport: LegTransport) {
        // Armed first: the flush usually completes at once, closing the transport (and cancelling
        // the timer) before `closeAfterFlush` returns.
        self.dropAfterCloseTimeout(transport)
        if self.handshake.closesTransport {
            self.writeGathered(transport)
            transport.closeAfterFlush()
        } else {
            self.flushOutput(transport)
        }
    }

    /// The bound on every wait of the closing handshake: an answer, a frame's end, a flush. Never
    /// armed once the transport is gone: nothing would cancel it, and every timer left in NIO's
    /// queue makes each cancel on the loop slower (they are found by a linear search).
    private func dropAfterCloseTimeout(_ transport: LegTransport) {
        self.closeTimer?.cancel()
        self.closeTimer = nil
        guard self.handshake.state != .finished else { return }
        self.closeTimer = transport.eventLoop.assumeIsolated().scheduleTask(in: self.session.closeTimeout) { [weak transport] in
            transport?.close()
        }
    }

    /// The peer broke the protocol: tell it why, drop it, and let the other side go.
    private func fail(_ error: WebSocketProtocolError, transport: LegTransport) {
        guard case .closeAndPassOn(let sendsClose) = self.handshake.failed() else { return }
        self.session.logger.info("\(self.side.rawValue) protocol error: \(error.reason)", metadata: ["client": "\(self.session.clientAddress)", "close_code": "\(error.code)"])
        if self.side == .client {
            self.session.recordClientClose(code: error.code, initiator: "gateway", reason: error.reason)
        }
        if sendsClose {
            self.sendClose(code: error.code, reason: error.reason, transport: transport)
        }
        self.partner?.relayClose(code: self.side == .client ? .goingAway : .internalError,
                                 reason: self.side == .client ? "client protocol error" : "backend protocol error")
        self.closeWhenFlushed(transport)
    }

    /// Writes a close frame; the handshake's state has already moved on.
    private func sendClose(code: WebSocketCloseCode?, reason: String, transport: LegTransport) {
        // Inside a half-written frame no close frame can be sent; the connection is dropped instead.
        guard self.outgoingRemaining == 0 else { return }
        let mask = self.masksOutgoing ? MaskKeys.next() : nil
        self.gatherControl(.close, payload: FrameEncoder.closePayload(code: code, reason: reason), mask: mask, transport: transport)
        self.flushOutput(transport)
    }

    /// A ping to a quiet client (see ``RelaySession/sweep(at:)``); false when a frame to it is half
    /// written, so the ping waits for the next sweep.
    func sendLivenessPing() -> Bool {
        guard let transport, self.handshake.sendsToPeer, self.outgoingRemaining == 0 else { return false }
        self.gatherControl(.ping, payload: ByteBuffer(), mask: nil, transport: transport)
        self.flushOutput(transport)
        return true
    }

    private func answerPing(_ payload: ByteBuffer, transport: LegTransport) {
        // A control frame may go between frames, never inside one: answer once the current frame is
        // out. And a peer that pings without reading gets one answer when it reads again, not one per
        // ping queued in memory: only the latest ping needs its pong (RFC 6455 §5.5.3). The held
        // payload is copied (at most 125 bytes): a slice would keep the whole read buffer alive.
        guard self.outgoingRemaining == 0, transport.isWritable else {
            self.pendingPong = ByteBuffer(bytes: payload.readableBytesView)
            return
        }
        let mask = self.masksOutgoing ? MaskKeys.next() : nil
        self.gatherControl(.pong, payload: payload, mask: mask, transport: transport)
        self.needsFlush = true
    }

    /// The pong held back (see ``answerPing(_:transport:)``), once a frame can go.
    private func answerPendingPing(transport: LegTransport) {
        guard self.outgoingRemaining == 0, let pong = self.pendingPong else { return }
        self.pendingPong = nil
        self.answerPing(pong, transport: transport)
    }

    // MARK: RelayPartner (called by the other leg)

    func relayFrame(opcode: WebSocketOpcode, fin: Bool, length: Int) {
        guard let transport, self.handshake.sendsToPeer else { return }
        if let compression = self.compression {
            switch compression.outbound.frameStarted(opcode: opcode, fin: fin, length: length) {
            case .passThrough: break
            case .compress: return
            case .finish:
                self.finishCompressedMessage(compression, transport: transport)
                return
            }
        }
        let mask = self.masksOutgoing ? MaskKeys.next() : nil
        let headerSize = FrameEncoder.headerSize(payloadLength: length, masked: mask != nil)
        let inline = length <= GatheredOutput.copyLimit ? length : 0
        self.gather(reserving: headerSize + inline) {
            FrameEncoder.writeHeader(into: &$0, fin: fin, opcode: opcode, payloadLength: length, mask: mask)
        }
        self.outgoingMask = mask
        self.outgoingOffset = 0
        self.outgoingRemaining = length
    }

    func relayPayload(_ payload: ByteBuffer) {
        if let compression = self.compression, compression.outbound.isCompressing {
            guard let transport, self.handshake.sendsToPeer else { return }
            var input = payload
            var output = ByteBuffer()
            do {
                try compression.deflater.deflate(&input, into: &output)
            } catch {
                self.compressionFailed(error, transport: transport)
                return
            }
            let ends = compression.outbound.payloadCompressed(payload.readableBytes)
            if output.readableBytes > 0 { self.writeCompressedFrame(output, fin: false, compression) }
            if ends { self.finishCompressedMessage(compression, transport: transport) }
            return
        }
        self.relay(payload, xoring: self.outgoingMask)
    }

    // MARK: permessage-deflate, gateway to client

    private func finishCompressedMessage(_ compression: LegCompression, transport: LegTransport) {
        var output = ByteBuffer()
        do {
            try compression.deflater.finishMessage(into: &output)
        } catch {
            self.compressionFailed(error, transport: transport)
            return
        }
        self.writeCompressedFrame(output, fin: true, compression)
        compression.outbound.finished()
    }

    /// A frame of the compressed message: RSV1 and the message's opcode on the first, continuation
    /// after; masked toward a backend.
    private func writeCompressedFrame(_ payload: ByteBuffer, fin: Bool, _ compression: LegCompression) {
        guard let transport else { return }
        let (opcode, compressed) = compression.outbound.nextFrame()
        let count = payload.readableBytes
        let mask = self.masksOutgoing ? MaskKeys.next() : nil
        let inline = count <= GatheredOutput.copyLimit ? count : 0
        self.gather(reserving: 14 + inline) { output in
            FrameEncoder.writeHeader(into: &output, fin: fin, opcode: opcode, payloadLength: count, mask: mask, compressed: compressed)
            if inline > 0 {
                let from = output.writerIndex - output.readerIndex
                output.writeImmutableBuffer(payload)
                if let mask {
                    output.withUnsafeMutableReadableBytes { mask.apply(to: UnsafeMutableRawBufferPointer(rebasing: $0[from..<(from + count)]), offset: 0) }
                }
            }
        }
        if inline == 0 && count > 0 {
            var payload = payload
            if let mask { payload.withUnsafeMutableReadableBytesInPlace { mask.apply(to: $0, offset: 0) } }
            self.writeGathered(transport)
            transport.write(payload)
        }
    }

    private func compressionFailed(_ error: Error, transport: LegTransport) {
        guard case .closeAndPassOn(let sendsClose) = self.handshake.failed() else { return }
        self.session.logger.error("compression failed: \(error)", metadata: ["client": "\(self.session.clientAddress)"])
        self.partner?.relayClose(code: .internalError, reason: "compression failed")
        if sendsClose { self.sendClose(code: .internalError, reason: "compression failed", transport: transport) }
        self.closeWhenFlushed(transport)
    }

    func relayMaskedPayload(_ payload: ByteBuffer, mask: WebSocketMask, offset: Int) {
        guard self.transport != nil, self.handshake.finishesFrame else { return }
        if let compression = self.compression, compression.outbound.isCompressing {
            var clear = payload
            clear.withUnsafeMutableReadableBytesInPlace { mask.apply(to: $0, offset: offset) }
            self.relayPayload(clear)
            return
        }
        // Frames pass one to one, so the sender's payload offset is this frame's offset too.
        assert(offset == self.outgoingOffset, "masked payload relayed out of step with its frame")
        if let outgoing = self.outgoingMask {
            self.relay(payload, xoring: mask.combined(with: outgoing))
        } else {
            var clear = payload
            clear.withUnsafeMutableReadableBytesInPlace { mask.apply(to: $0, offset: offset) }
            self.relayPayload(clear)
        }
    }

    /// Writes payload of the current frame, XORed with `mask` on the way (our key, or the sender's
    /// and ours combined).
    private func relay(_ payload: ByteBuffer, xoring mask: WebSocketMask?) {
        guard let transport else { return }
        let sending = self.handshake.sendsToPeer
        guard sending || self.handshake.finishesFrame else { return }
        let count = payload.readableBytes
        let offset = self.outgoingOffset
        if count <= GatheredOutput.copyLimit {
            // Copied behind the header, then masked there: our own buffer, no copy-on-write.
            self.gather(reserving: count) { output in
                let from = output.writerIndex - output.readerIndex
                output.writeImmutableBuffer(payload)
                if let mask {
                    output.withUnsafeMutableReadableBytes { bytes in
                        mask.apply(to: UnsafeMutableRawBufferPointer(rebasing: bytes[from..<(from + count)]), offset: offset)
                    }
                }
            }
        } else {
            var payload = payload
            if let mask {
                payload.withUnsafeMutableReadableBytesInPlace { mask.apply(to: $0, offset: offset) }
            }
            self.writeGathered(transport)
            transport.write(payload)
        }
        self.outgoingOffset += count
        self.outgoingRemaining -= count
        if sending {
            self.answerPendingPing(transport: transport)
        } else if self.outgoingRemaining == 0 {
            self.answerOwedClose(transport)
        }
    }

    /// This leg's own transport drained: a pong held back while it was full goes now.
    func transportBecameWritable() {
        guard let transport, self.handshake.sendsToPeer, self.outgoingRemaining == 0, self.pendingPong != nil else { return }
        self.answerPendingPing(transport: transport)
        self.flushOutput(transport)
    }

    func relayFlush() {
        self.needsFlush = false
        guard let transport else { return }
        self.flushOutput(transport)
    }

    // MARK: Output gathering

    /// Appends to what is gathered for the peer, on a local moved out of ``output`` and back (see
    /// ``GatheredOutput/appendable(_:reserving:)``).
    @discardableResult
    @inline(__always)
    private func gather<T>(reserving bytes: Int, _ body: (inout ByteBuffer) -> T) -> T {
        var buffer = GatheredOutput.appendable(self.output.moveOut(), reserving: bytes)
        defer { self.output.moveBack(buffer) }
        return body(&buffer)
    }

    private func gatherControl(_ opcode: WebSocketOpcode, payload: ByteBuffer, mask: WebSocketMask?, transport: LegTransport) {
        self.gather(reserving: 14 + payload.readableBytes) {
            FrameEncoder.writeControlFrame(into: &$0, opcode: opcode, payload: payload, mask: mask)
        }
    }

    /// Hands what was gathered to the transport (without flushing).
    private func writeGathered(_ transport: LegTransport) {
        if let output = self.output.moveOut(), output.readableBytes > 0 { transport.write(output) }
    }

    private func flushOutput(_ transport: LegTransport) {
        self.writeGathered(transport)
        transport.flush()
    }

    func relayClose(code: WebSocketCloseCode?, reason: String) {
        guard let transport else { return }
        let action = self.handshake.partnerClosed(midFrame: self.outgoingRemaining > 0)
        guard action != .none else { return }
        if self.side == .client {
            self.session.recordClientClose(code: code, initiator: "backend", reason: reason)
        }
        if action == .drop {
            // A frame to this peer is half written: no close frame can follow it.
            transport.close()
            return
        }
        self.liftRateLimit(transport)
        self.sendClose(code: code, reason: reason, transport: transport)
        self.dropAfterCloseTimeout(transport)
    }

    var isWritable: Bool {
        self.transport?.isWritable ?? true
    }

    var awaitsFrameEnd: Bool { self.handshake.awaitsFrameEnd }

    func resumeReading() {
        if let compression = self.compression, compression.inbound.isPaused, let transport {
            self.resumeInflating(compression, transport: transport)
            if compression.inbound.isPaused { return }
        }
        if self.isThrottled { return }  // its timer resumes reading
        self.transport?.resumeReading()
    }
}
