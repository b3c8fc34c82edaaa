import Logging
import NIOCore

/// Tells HTTP/2 with prior knowledge (the 24-byte connection preface, RFC 9113 §3.4) from HTTP/1.1
/// on a plain listener, then replaces itself with the matching pipeline and hands over what it read.
/// Holds at most 24 bytes, and drops clients that send nothing within the handshake timeout.
final class ProtocolDetector: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

    private let gateway: GatewayContext
    private let client: ClientConnection
    private var buffered: ByteBuffer?
    private var timer: Scheduled<Void>?
    private var decided = false

    init(gateway: GatewayContext, client: ClientConnection) {
        self.gateway = gateway
        self.client = client
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let timeout = self.gateway.settings.handshakeTimeout
        self.timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: self.client.handshakeDeadline) { [weak self] in
            guard let self, !self.decided else { return }
            self.gateway.logger.info("dropped client: no request within \(timeout.prettyDescription)", metadata: ["client": "\(self.client.loggable)"])
            context.close(promise: nil)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.timer?.cancel()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffered = self.buffered.takeAppending(Self.unwrapInboundIn(data))
        let bytes = buffered.readableBytesView
        let compared = min(bytes.count, Self.preface.count)
        let matches = bytes.prefix(compared).elementsEqual(Self.preface.prefix(compared))
        if matches && compared < Self.preface.count {  // too early to tell
            self.buffered = buffered
            return
        }
        self.decide(http2: matches, buffered: buffered, context: context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.timer?.cancel()
        context.fireChannelInactive()
    }

    private func decide(http2: Bool, buffered: ByteBuffer, context: ChannelHandlerContext) {
        self.decided = true
        self.timer?.cancel()
        do {
            if http2 {
                try context.pipeline.syncOperations.addHandler(HTTP2ConnectionHandler(gateway: self.gateway, client: self.client, eventLoop: context.eventLoop))
            } else {
                try HTTP1Pipeline.configure(context.channel, gateway: self.gateway, client: self.client)
            }
        } catch {
            self.gateway.logger.error("cannot set up the connection: \(error)")
            context.close(promise: nil)
            return
        }
        context.fireChannelRead(Self.wrapInboundOut(buffered))
        context.fireChannelReadComplete()
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}
