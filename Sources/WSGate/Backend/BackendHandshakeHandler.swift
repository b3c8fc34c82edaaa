import NIOCore

/// A WebSocket backend connection's one handler until the relay takes over: it sends the opening
/// handshake once connected, reads the answer through ``BackendHandshake``, then holds what the
/// backend sends after its 101 (frames in the same read, a backend that speaks first) and hands
/// it to the relay when the relay removes it. Holding is bounded by one read: the channel does not
/// read again until the relay asks.
final class BackendHandshakeHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// The handler's name in the pipeline, for the relay to remove it.
    static let name = "backend-handshake"

    private var handshake: BackendHandshake
    private let request: ByteBuffer
    private let promise: EventLoopPromise<BackendHandshake.Outcome>
    /// The 101 arrived and waits for the end of the read batch to be announced.
    private var accepted: BackendHandshake.Outcome?
    private var held: [ByteBuffer] = []
    private var inputClosed = false

    init(request: ByteBuffer, handshake: BackendHandshake, promise: EventLoopPromise<BackendHandshake.Outcome>) {
        self.request = request
        self.handshake = handshake
        self.promise = promise
    }

    func channelActive(context: ChannelHandlerContext) {
        context.writeAndFlush(Self.wrapOutboundOut(self.request), promise: nil)
        context.read()
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = Self.unwrapInboundIn(data)
        switch self.handshake.state {
        case .accepted:
            self.held.append(bytes)
        case .refused:
            break
        case .awaitingResponse:
            switch self.handshake.receive(&bytes) {
            case .needMore:
                break
            case .accept(let outcome):
                if bytes.readableBytes > 0 { self.held.append(bytes) }
                self.accepted = outcome
            case .refuse(let error):
                self.fail(context: context, error)
            }
        }
    }

    /// The session hears of the 101 here, after the read that brought it: the relay it installs
    /// then removes this handler outside of its `channelRead`.
    func channelReadComplete(context: ChannelHandlerContext) {
        if let outcome = self.accepted {
            self.accepted = nil
            self.promise.succeed(outcome)
        } else if case .awaitingResponse = self.handshake.state {
            context.read()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.promise.fail(BackendError.closedDuringHandshake)  // no-op once it succeeded
        context.fireChannelInactive()
    }

    /// Backend sockets allow half-closure (the relay needs it), so a backend that closes before its
    /// 101 arrives as `inputClosed`, not as an inactive channel: no answer can come any more.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard case ChannelEvent.inputClosed = event else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        switch self.handshake.state {
        case .awaitingResponse: self.fail(context: context, .closedDuringHandshake)
        case .accepted: self.inputClosed = true
        case .refused: break
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        guard case .awaitingResponse = self.handshake.state else {
            context.fireErrorCaught(error)
            return
        }
        self.fail(context: context, .invalidHandshake("\(error)"))
    }

    func removeHandler(context: ChannelHandlerContext, removalToken: ChannelHandlerContext.RemovalToken) {
        let held = self.held
        self.held.removeAll()
        for buffer in held {
            context.fireChannelRead(Self.wrapInboundOut(buffer))
        }
        if !held.isEmpty { context.fireChannelReadComplete() }
        if self.inputClosed { context.fireUserInboundEventTriggered(ChannelEvent.inputClosed) }
        context.leavePipeline(removalToken: removalToken)
    }

    private func fail(context: ChannelHandlerContext, _ error: BackendError) {
        self.handshake.connectionFailed()
        self.promise.fail(error)
        context.close(promise: nil)
    }
}
