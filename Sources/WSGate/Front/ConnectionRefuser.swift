import NIOCore

/// Answers a connection that is over a connection limit with a fixed HTTP/1.1 response, before it
/// has sent anything, then closes it. Whatever the client sends meanwhile is read and dropped, so
/// the close is a FIN the client can read the answer before, not a reset that loses it.
final class ConnectionRefuser: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// How long the client gets to finish sending before the connection is cut.
    static let lingerTime = TimeAmount.seconds(2)

    private let response: String
    private var timer: Scheduled<Void>?

    init(status: Int, reason: String, retryAfter: Int?) {
        let phrase = status == 503 ? "Service Unavailable" : "Too Many Requests"
        let body = "\(phrase): \(reason)\n"
        var head = "HTTP/1.1 \(status) \(phrase)\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\nServer: wsgate\r\n"
        if let retryAfter { head += "Retry-After: \(retryAfter)\r\n" }
        self.response = head + "\r\n" + body
    }

    /// Added at accept (before activation) or after a PROXY header (when already active).
    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { self.answer(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        self.answer(context: context)
        context.fireChannelActive()
    }

    private func answer(context: ChannelHandlerContext) {
        guard self.timer == nil else { return }
        context.writeAndFlush(Self.wrapOutboundOut(context.channel.allocator.buffer(string: self.response))).assumeIsolated().whenComplete { _ in
            context.close(mode: .output, promise: nil)
        }
        self.timer = context.eventLoop.assumeIsolated().scheduleTask(in: Self.lingerTime) { context.close(promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event as? ChannelEvent == .inputClosed { context.close(promise: nil) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.timer?.cancel()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
