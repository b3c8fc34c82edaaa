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
/// Works on any channel that carries the WebSocket byte stream, so the HTTP/2 front can reuse it.
final class WebSocketLegHandler: ChannelDuplexHandler, RelayPartner {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let side: RelaySession.Side
    private let session: RelaySession
    private var decoder: FrameDecoder
    var partner: RelayPartner?
    private var context: ChannelHandlerContext?

    private var reads = ReadGate()
    private var closeSent = false
    private var closeReceived = false
    private var closeTimer: Scheduled<Void>?
    private var needsFlush = false

    /// The frame being relayed to this leg's peer: masks are per frame, payload comes in slices.
    private var outgoingMask: WebSocketMask?
    private var outgoingOffset = 0
    private var outgoingRemaining = 0
    private var maskKeys = MaskKeySource()
    /// A ping that arrived while a frame to this peer was half written (only the latest needs an answer).
    private var pendingPong: ByteBuffer?

    init(side: RelaySession.Side, session: RelaySession, maxMessageBytes: Int) {
        self.side = side
        self.session = session
        // The client leg is judged as a server (strict UTF-8); backend text is the backend's business.
        self.decoder = FrameDecoder(
            role: side == .client ? .server : .client,
            configuration: .init(maxMessageBytes: maxMessageBytes, validatesUTF8: side == .client)
        )
    }

    private var masksOutgoing: Bool { self.side == .backend }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    /// Starts reading once the session is wired up.
    func start() {
        self.context?.read()
    }

    var channel: Channel? { self.context?.channel }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !self.closeReceived else { return }
        var buffer = Self.unwrapInboundIn(data)
        do {
            while let event = try self.decoder.next(from: &buffer) {
                switch event {
                case .dataFrame(let opcode, let fin, let length):
                    if fin { self.session.countMessage(from: self.side) }
                    if !self.closeSent { self.partner?.relayFrame(opcode: opcode, fin: fin, length: length) }
                case .payload(let payload):
                    self.session.count(from: self.side, bytes: payload.readableBytes)
                    if !self.closeSent { self.partner?.relayPayload(payload) }
                case .ping(let payload):
                    if !self.closeSent { self.writeControl(.pong, payload: payload, context: context) }
                case .pong:
                    break
                case .close(let code, let reason):
                    self.peerClosed(code: code, reason: reason, context: context)
                    return
                }
            }
        } catch {
            self.fail(error, context: context)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.session.noteActivity()
        self.partner?.relayFlush()
        if self.needsFlush {
            self.needsFlush = false
            context.flush()
        }
    }

    func read(context: ChannelHandlerContext) {
        self.reads.read(context, partnerIsWritable: self.partner?.isWritable ?? true)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { self.partner?.resumeReading() }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            context.close(promise: nil)  // a half-closed WebSocket peer is a gone one
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        self.session.logger.debug("\(self.side.rawValue) connection error: \(error)", metadata: ["client": "\(self.session.clientAddress)"])
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.closeTimer?.cancel()
        if !self.closeSent && !self.closeReceived {
            // The peer vanished without a close frame.
            switch self.side {
            case .client:
                self.session.recordClientClose(code: nil, initiator: "client", reason: "connection dropped without a close frame")
                self.partner?.relayClose(code: .goingAway, reason: "client went away")
            case .backend:
                self.partner?.relayClose(code: .internalError, reason: "backend connection lost")
            }
        }
        self.partner = nil
        self.session.legFinished()
        context.fireChannelInactive()
    }

    // MARK: Closing

    /// The peer sent a close frame.
    private func peerClosed(code: WebSocketCloseCode?, reason: String, context: ChannelHandlerContext) {
        self.closeReceived = true
        if self.closeSent {
            // The answer to our close: this hop's handshake is complete.
            self.closeAfterFlush(context: context)
            return
        }
        if self.side == .client {
            self.session.recordClientClose(code: code, initiator: "client", reason: reason)
        }
        self.sendClose(code: code, reason: "", context: context)
        // Tell the other side before closing: closing may run channelInactive at once, which lets go of the partner.
        self.partner?.relayClose(code: code, reason: reason)
        self.closeAfterFlush(context: context)
    }

    /// The peer broke the protocol: tell it why, drop it, and let the other side go.
    private func fail(_ error: WebSocketProtocolError, context: ChannelHandlerContext) {
        self.session.logger.info("\(self.side.rawValue) protocol error: \(error.reason)", metadata: ["client": "\(self.session.clientAddress)", "close_code": "\(error.code)"])
        if self.side == .client {
            self.session.recordClientClose(code: error.code, initiator: "gateway", reason: error.reason)
        }
        if !self.closeSent {
            self.sendClose(code: error.code, reason: error.reason, context: context)
        }
        self.closeReceived = true
        self.partner?.relayClose(code: self.side == .client ? .goingAway : .internalError,
                                 reason: self.side == .client ? "client protocol error" : "backend protocol error")
        self.closeAfterFlush(context: context)
    }

    private func sendClose(code: WebSocketCloseCode?, reason: String, context: ChannelHandlerContext) {
        self.closeSent = true
        // Inside a half-written frame no close frame can be sent; the connection is dropped instead.
        guard self.outgoingRemaining == 0 else { return }
        let mask = self.masksOutgoing ? self.maskKeys.nextMask() : nil
        let frame = FrameEncoder.closeFrame(code: code, reason: reason, mask: mask, allocator: context.channel.allocator)
        context.writeAndFlush(Self.wrapOutboundOut(frame), promise: nil)
    }

    private func closeAfterFlush(context: ChannelHandlerContext) {
        context.writeAndFlush(Self.wrapOutboundOut(context.channel.allocator.buffer(capacity: 0))).whenComplete { _ in
            context.close(promise: nil)
        }
    }

    private func writeControl(_ opcode: WebSocketOpcode, payload: ByteBuffer, context: ChannelHandlerContext) {
        // A control frame may go between frames, never inside one: answer once the current frame is out.
        guard self.outgoingRemaining == 0 else {
            self.pendingPong = payload
            return
        }
        let mask = self.masksOutgoing ? self.maskKeys.nextMask() : nil
        let frame = FrameEncoder.controlFrame(opcode: opcode, payload: payload, mask: mask, allocator: context.channel.allocator)
        context.write(Self.wrapOutboundOut(frame), promise: nil)
        self.needsFlush = true
    }

    // MARK: RelayPartner (called by the other leg)

    func relayFrame(opcode: WebSocketOpcode, fin: Bool, length: Int) {
        guard let context, !self.closeSent else { return }
        let mask = self.masksOutgoing ? self.maskKeys.nextMask() : nil
        var header = context.channel.allocator.buffer(capacity: FrameEncoder.headerSize(payloadLength: length, masked: mask != nil))
        FrameEncoder.writeHeader(into: &header, fin: fin, opcode: opcode, payloadLength: length, mask: mask)
        self.outgoingMask = mask
        self.outgoingOffset = 0
        self.outgoingRemaining = length
        context.write(Self.wrapOutboundOut(header), promise: nil)
    }

    func relayPayload(_ payload: ByteBuffer) {
        guard let context, !self.closeSent else { return }
        var payload = payload
        if let mask = self.outgoingMask {
            let offset = self.outgoingOffset
            payload.withUnsafeMutableReadableBytesInPlace { mask.apply(to: $0, offset: offset) }
        }
        self.outgoingOffset += payload.readableBytes
        self.outgoingRemaining -= payload.readableBytes
        context.write(Self.wrapOutboundOut(payload), promise: nil)
        if self.outgoingRemaining == 0, let pong = self.pendingPong {
            self.pendingPong = nil
            self.writeControl(.pong, payload: pong, context: context)
        }
    }

    func relayFlush() {
        self.needsFlush = false
        self.context?.flush()
    }

    func relayClose(code: WebSocketCloseCode?, reason: String) {
        guard let context, !self.closeSent else { return }
        if self.side == .client {
            self.session.recordClientClose(code: code, initiator: "backend", reason: reason)
        }
        if self.outgoingRemaining > 0 {
            // A frame to this peer is half written: no close frame can follow it, so drop the connection.
            self.closeSent = true
            context.close(promise: nil)
            return
        }
        self.sendClose(code: code, reason: reason, context: context)
        if self.closeReceived {
            self.closeAfterFlush(context: context)
        } else {
            self.closeTimer = context.eventLoop.scheduleTask(in: self.session.closeTimeout) {
                context.close(promise: nil)
            }
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
