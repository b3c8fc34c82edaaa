import Logging
import NIOCore

/// First handler on a connection from a trusted proxy: reads its PROXY protocol header (v1 or v2),
/// records the client it names, then builds the connection's real pipeline and hands it the bytes
/// that followed. A missing or malformed header, or none within the handshake timeout, closes the
/// connection: a trusted proxy that sends no header is misconfigured, and guessing would be worse.
final class ProxyProtocolHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let gateway: GatewayContext
    private let client: ClientConnection
    private let next: (Channel) throws -> Void
    private var buffered: ByteBuffer?
    private var timer: Scheduled<Void>?
    private var done = false

    init(gateway: GatewayContext, client: ClientConnection, next: @escaping (Channel) throws -> Void) {
        self.gateway = gateway
        self.client = client
        self.next = next
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let timeout = self.gateway.settings.handshakeTimeout
        self.timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: self.client.handshakeDeadline) { [weak self] in
            guard let self, !self.done else { return }
            self.refuse("no PROXY protocol header within \(timeout.prettyDescription)", context: context)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.timer?.cancel()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !self.done else { return }
        var buffered = self.buffered.takeAppending(Self.unwrapInboundIn(data))
        let header: ProxyProtocol.Header?
        do {
            header = try ProxyProtocol.parse(&buffered)
            self.buffered = buffered
        } catch {
            self.refuse("\(error)", context: context)
            return
        }
        guard let header else { return }
        self.done = true
        self.timer?.cancel()
        if case .proxied(let source, let destination) = header {
            self.client.address = source
            self.client.localAddress = destination
        }
        do {
            try self.next(context.channel)
        } catch {
            self.gateway.logger.error("cannot set up the connection: \(error)")
            context.close(promise: nil)
            return
        }
        let rest = buffered
        self.buffered = nil
        if rest.readableBytes > 0 {
            context.fireChannelRead(Self.wrapInboundOut(rest))
            context.fireChannelReadComplete()
        }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    private func refuse(_ reason: String, context: ChannelHandlerContext) {
        self.done = true
        self.gateway.logger.info("dropped connection from proxy: \(reason)", metadata: ["peer": "\(context.channel.remoteAddress?.loggable ?? "?")"])
        RefusalMetrics.count("proxy_protocol", status: 400)
        context.close(promise: nil)
    }
}
