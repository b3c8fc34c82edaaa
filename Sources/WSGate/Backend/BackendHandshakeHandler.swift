import NIOCore
import NIOHTTP1

/// The gateway's client side of the RFC 6455 opening handshake with a WebSocket backend.
/// Sends the request when the connection is up, validates the 101, then steps out of the way:
/// it removes the HTTP codec (leftover bytes go to the ``EarlyBytesHandler`` behind it) and itself.
final class BackendHandshakeHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    struct Outcome {
        var subprotocol: String?
        var compression: BackendDeflate?
    }

    private enum State {
        case waitingForHead
        case waitingForEnd(Outcome)
        case done
        /// Refused: whatever the decoder still produces (the response's end, a body) is dropped.
        case failed
    }

    private let request: HTTPRequestHead
    private let expectedAccept: String
    private let offeredSubprotocols: [String]
    private let offeredCompression: Bool
    private let codec: [RemovableChannelHandler]
    private let promise: EventLoopPromise<Outcome>
    private var state = State.waitingForHead

    init(request: HTTPRequestHead, key: String, offeredSubprotocols: [String], offeredCompression: Bool = false,
         codec: [RemovableChannelHandler], promise: EventLoopPromise<Outcome>) {
        self.request = request
        self.offeredCompression = offeredCompression
        self.expectedAccept = WebSocketAccept.value(forKey: key)
        self.offeredSubprotocols = offeredSubprotocols
        self.codec = codec
        self.promise = promise
    }

    func channelActive(context: ChannelHandlerContext) {
        context.write(Self.wrapOutboundOut(.head(self.request)), promise: nil)
        context.writeAndFlush(Self.wrapOutboundOut(.end(nil)), promise: nil)
        context.read()
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .failed = self.state { return }
        if case .done = self.state {
            // Bytes after the 101, handed over by the departing decoder: not HTTP, pass them on.
            context.fireChannelRead(data)
            return
        }
        switch (Self.unwrapInboundIn(data), self.state) {
        case (.head(let head), .waitingForHead):
            switch self.validate(head) {
            case .success(let outcome):
                self.state = .waitingForEnd(outcome)
            case .failure(let error):
                self.fail(context: context, error)
            }
        case (.end, .waitingForEnd(let outcome)):
            self.state = .done
            // NIO's decoder leaves in a task of its own, and until it has left it would intercept
            // (and choke on) the relay's writes: succeed only once the whole codec is gone.
            let pipeline = context.pipeline.syncOperations
            let removed = self.codec.map { pipeline.removeHandler($0) }
            EventLoopFuture.andAllComplete(removed, on: context.eventLoop).assumeIsolated().whenComplete { _ in
                guard context.channel.isActive else {
                    self.promise.fail(BackendError.closedDuringHandshake)
                    return
                }
                context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
                self.promise.succeed(outcome)
            }
        default:
            break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        switch self.state {
        case .done, .failed: return
        default: break
        }
        context.read()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.fail(context: context, .closedDuringHandshake)
        self.promise.fail(BackendError.closedDuringHandshake)  // no-op unless the codec was still leaving
        context.fireChannelInactive()
    }

    /// Backend sockets allow half-closure (the relay needs it), so a backend that closes before its
    /// 101 arrives as `inputClosed`, not as an inactive channel: no answer can come any more.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .inputClosed = event as? ChannelEvent {
            self.fail(context: context, .closedDuringHandshake)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        self.fail(context: context, .invalidHandshake("\(error)"))
    }

    private func fail(context: ChannelHandlerContext, _ error: BackendError) {
        switch self.state {
        case .done, .failed: return
        default: break
        }
        self.state = .failed
        self.promise.fail(error)
        context.close(promise: nil)
    }

    private func validate(_ head: HTTPResponseHead) -> Result<Outcome, BackendError> {
        guard head.status == .switchingProtocols else { return .failure(.handshakeRejected(status: head.status)) }
        guard HTTPTokens.contains(head.headers, "upgrade", token: "websocket") else {
            return .failure(.invalidHandshake("101 without 'Upgrade: websocket'"))
        }
        guard HTTPTokens.contains(head.headers, "connection", token: "upgrade") else {
            return .failure(.invalidHandshake("101 without 'Connection: upgrade'"))
        }
        guard head.headers["sec-websocket-accept"].map({ $0.trimmingWhitespace() }) == [self.expectedAccept] else {
            return .failure(.invalidHandshake("wrong Sec-WebSocket-Accept"))
        }
        // Only what was offered may come back: permessage-deflate when offered, nothing otherwise.
        let compression: BackendDeflate?
        switch DeflateNegotiation.backendAccepted(head.headers["sec-websocket-extensions"]) {
        case .success(let agreed) where agreed == nil || self.offeredCompression: compression = agreed
        case .success: return .failure(.invalidHandshake("extension accepted that was not offered"))
        case .failure(let error): return .failure(.invalidHandshake(error.reason))
        }
        let chosen = HTTPTokens.list(head.headers, "sec-websocket-protocol")
        switch chosen.count {
        case 0:
            return .success(Outcome(subprotocol: nil, compression: compression))
        case 1 where self.offeredSubprotocols.contains(String(chosen[0])):
            return .success(Outcome(subprotocol: String(chosen[0]), compression: compression))
        default:
            return .failure(.invalidHandshake("subprotocol '\(chosen.joined(separator: ", "))' was not offered"))
        }
    }
}
