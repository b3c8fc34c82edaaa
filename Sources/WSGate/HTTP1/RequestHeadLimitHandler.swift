import Logging
import NIOCore

/// Sits in front of the HTTP decoder and answers 431 when a request head grows past the limit,
/// so the decoder never buffers more than `limit` bytes of head.
final class RequestHeadLimitHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private var limiter: RequestHeadLimiter
    private var refused = false
    private let logger: Logger

    init(limit: Int, logger: Logger) {
        self.limiter = RequestHeadLimiter(limit: limit)
        self.logger = logger
    }

    /// Called by the HTTP handler when a request has been fully read.
    func requestEnded() {
        self.limiter.requestEnded()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !self.refused else { return }
        let buffer = Self.unwrapInboundIn(data)
        let verdict = buffer.withUnsafeReadableBytes { self.limiter.consume($0) }
        guard verdict == .tooLarge else {
            context.fireChannelRead(data)
            return
        }
        self.refused = true
        self.logger.info("refused request: head larger than \(self.limiter.limit) bytes", metadata: ["status": "431"])
        let body = "request head larger than \(self.limiter.limit) bytes\n"
        var response = context.channel.allocator.buffer(capacity: 160)
        response.writeString("HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)")
        context.writeAndFlush(NIOAny(response)).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }
}
