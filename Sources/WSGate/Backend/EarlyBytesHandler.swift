import NIOCore

/// Holds bytes that arrive after a handshake finished but before the relay is installed (a backend
/// that speaks first, or frames that followed the 101 in the same read), and hands them to the
/// relay when it is removed. Bounded by one read: the channel does not read again until the relay asks.
final class EarlyBytesHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private var held: [ByteBuffer] = []
    private var inputClosed = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.held.append(Self.unwrapInboundIn(data))
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            self.inputClosed = true
        } else {
            context.fireUserInboundEventTriggered(event)
        }
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
}
