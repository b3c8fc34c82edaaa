import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket

/// A WebSocket echo service built on NIO's own WebSocket stack (not wsgate's), so that tests and the
/// demo put wsgate in front of an independent implementation. Echoes every frame with its opcode
/// and FIN, answers pings, and completes the closing handshake echoing the close code.
public enum WebSocketEchoServer {
    /// Starts listening; `port` 0 picks a free one (read it from the returned channel).
    /// The first offered subprotocol is selected, so tests can see negotiation end to end.
    public static func start(host: String, port: Int, group: EventLoopGroup, maxFrameSize: Int = 1 << 25) async throws -> Channel {
        try await ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                let upgrader = NIOWebSocketServerUpgrader(
                    maxFrameSize: maxFrameSize,
                    shouldUpgrade: { channel, head in
                        var headers = HTTPHeaders()
                        if let offered = head.headers.first(name: "sec-websocket-protocol")?.split(separator: ",").first {
                            headers.add(name: "Sec-WebSocket-Protocol", value: offered.trimmingCharacters())
                        }
                        if let forwarded = head.headers.first(name: "x-forwarded-for") {
                            headers.add(name: "X-Echo-Forwarded-For", value: forwarded)
                        }
                        headers.add(name: "X-Echo-Path", value: head.uri)
                        return channel.eventLoop.makeSucceededFuture(headers)
                    },
                    upgradePipelineHandler: { channel, head in
                        channel.eventLoop.makeCompletedFuture {
                            // A request for ".../inspect" first gets its own request line and headers
                            // as a text message, so tests can see what the gateway forwarded.
                            var greeting: String?
                            if head.uri.hasSuffix("/inspect") || head.uri.contains("/inspect?") {
                                greeting = "GET \(head.uri)\n" + head.headers.map { "\($0.name): \($0.value)" }.joined(separator: "\n")
                            }
                            try channel.pipeline.syncOperations.addHandler(EchoFrameHandler(greeting: greeting))
                        }
                    }
                )
                return channel.pipeline.configureHTTPServerPipeline(
                    withServerUpgrade: (upgraders: [upgrader], completionHandler: { _ in })
                )
            }
            .bind(host: host, port: port)
            .get()
    }
}

private extension Substring {
    func trimmingCharacters() -> String {
        String(self.drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }
}

final class EchoFrameHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private var closing = false
    private let greeting: String?

    init(greeting: String? = nil) {
        self.greeting = greeting
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if let greeting, context.channel.isActive {
            context.writeAndFlush(Self.wrapOutboundOut(WebSocketFrame(fin: true, opcode: .text, data: context.channel.allocator.buffer(string: greeting))), promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = Self.unwrapInboundIn(data)
        let payload = frame.unmaskedData  // unmasks a copy on every access: once per frame
        switch frame.opcode {
        case .connectionClose:
            if self.closing {
                context.close(promise: nil)
                return
            }
            self.closing = true
            let code = payload.getInteger(at: payload.readerIndex, as: UInt16.self)
            var reply = context.channel.allocator.buffer(capacity: 2)
            if let code { reply.writeInteger(code) }
            context.writeAndFlush(Self.wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: reply))).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
        case .ping:
            context.writeAndFlush(Self.wrapOutboundOut(WebSocketFrame(fin: true, opcode: .pong, data: payload)), promise: nil)
        case .pong:
            break
        default:
            guard !self.closing else { return }
            // "close:CODE" asks the echo service to start the closing handshake itself.
            if frame.opcode == .text, frame.fin, let text = payload.getString(at: payload.readerIndex, length: payload.readableBytes),
               text.hasPrefix("close:"), let code = UInt16(text.dropFirst(6)) {
                self.closing = true
                var close = context.channel.allocator.buffer(capacity: 16)
                close.writeInteger(code)
                close.writeString("bye")
                context.writeAndFlush(Self.wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: close)), promise: nil)
                return
            }
            context.write(Self.wrapOutboundOut(WebSocketFrame(fin: frame.fin, opcode: frame.opcode, data: payload)), promise: nil)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
