import NIOCore

/// The NIO adapter for a ``WebSocketLeg`` that owns a whole channel: the HTTP/1.1 client leg after
/// the 101, and every WebSocket backend leg. Reads only while the partner leg can take writes.
final class WebSocketLegHandler: ChannelDuplexHandler, LegTransport {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let leg: WebSocketLeg
    /// The channel's loop, known from the start: a leg's timer may ask for it after the handler left.
    let eventLoop: EventLoop
    private var context: ChannelHandlerContext?
    private var reads = ReadGate()

    init(leg: WebSocketLeg, eventLoop: EventLoop) {
        self.leg = leg
        self.eventLoop = eventLoop
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.leg.transport = self
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        self.leg.transport = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.leg.receive(Self.unwrapInboundIn(data))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.leg.readComplete()
    }

    func read(context: ChannelHandlerContext) {
        if self.reads.read(allowed: self.leg.mayRead) { context.read() }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            self.leg.partner?.resumeReading()
            self.leg.transportBecameWritable()
        }
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
        self.leg.transportFailed(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.leg.transportClosed()
        context.fireChannelInactive()
    }

    // MARK: LegTransport

    var isWritable: Bool { self.context?.channel.isWritable ?? true }

    func write(_ buffer: ByteBuffer) {
        self.context?.write(Self.wrapOutboundOut(buffer), promise: nil)
    }

    func flush() {
        self.context?.flush()
    }

    func startReading() {
        guard let context else { return }
        guard context.channel.isActive else {
            // The connection closed before this handler joined it (the 101's write failed, say): its
            // channelInactive has gone by, so the leg hears of the end here, or its partner stays open.
            self.leg.transportClosed()
            return
        }
        context.read()
    }

    func resumeReading() {
        guard let context else { return }
        if self.reads.resume() { context.read() }
    }

    func closeAfterFlush() {
        guard let context else { return }
        context.writeAndFlush(Self.wrapOutboundOut(context.channel.allocator.buffer(capacity: 0))).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }

    func close() {
        self.context?.close(promise: nil)
    }
}
