import Logging
import NIOCore
import NIOHTTP1

/// Answers HTTP/1.1 requests and carries a WebSocket handshake through: validate and route here,
/// then the shared session path (``WebSocketSessionStart``, with this handler as its
/// ``SessionFront``) admits it and opens the backend; only then is the 101 sent and the connection
/// handed to the relay. While the backend is being opened the client is not read, so nothing it
/// sends early is lost or buffered without bound.
final class HTTPServerHandler: ChannelDuplexHandler, RemovableChannelHandler, SessionFront, StaticFileFront {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private let gateway: GatewayContext
    private let client: ClientConnection
    private let headLimiter: RequestHeadLimitHandler
    private let decoder: ByteToMessageHandler<HTTPRequestDecoder>
    private let encoder: HTTPResponseEncoder
    /// Which request is being read or answered, and whether the client is read meanwhile.
    private var state = HTTP1ConnectionState()
    private var handshakeTimer: Scheduled<Void>?
    private var context: ChannelHandlerContext?
    /// `ip:port` of the client, formatted only when something is logged.
    var clientDescription: String { self.client.loggable }

    init(gateway: GatewayContext, client: ClientConnection, headLimiter: RequestHeadLimitHandler, decoder: ByteToMessageHandler<HTTPRequestDecoder>, encoder: HTTPResponseEncoder) {
        self.gateway = gateway
        self.client = client
        self.headLimiter = headLimiter
        self.decoder = decoder
        self.encoder = encoder
    }

    private var logger: Logger { self.gateway.logger }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { self.armHandshakeTimer(until: self.client.handshakeDeadline, context: context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        self.armHandshakeTimer(until: self.client.handshakeDeadline, context: context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.handshakeTimer?.cancel()
        context.fireChannelInactive()
    }

    /// The first request's deadline is the connection's (``ClientConnection/handshakeDeadline``);
    /// a kept-alive connection's next request gets the whole timeout from its predecessor's end.
    private func armHandshakeTimer(until deadline: NIODeadline, context: ChannelHandlerContext) {
        self.handshakeTimer?.cancel()
        let timeout = self.gateway.settings.handshakeTimeout
        self.handshakeTimer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [weak self] in
            guard let self else { return }
            self.logger.info("dropped client: no complete request within \(timeout.prettyDescription)", metadata: ["client": "\(self.clientDescription)"])
            self.state.close()
            context.close(promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch Self.unwrapInboundIn(data) {
        case .head(let head):
            // The timer runs on until the request's end: a head announcing a body that never
            // comes would otherwise hold the connection for good.
            self.state.head {
                let decision = HTTPRefusal.headerCount(head.headers.count, limit: self.gateway.settings.limits.maxHeaderCount).map { .refuse($0) }
                    ?? HandshakeValidator.decide(head, routing: self.gateway.routing, secure: self.client.secure)
                return .init(decision: decision, keepAlive: head.isKeepAlive, isHead: head.method == .HEAD)
            }
        case .body:
            break  // request bodies mean nothing here; they are read and dropped
        case .end:
            guard let request = self.state.end() else { return }
            self.handshakeTimer?.cancel()
            self.headLimiter.requestEnded()
            self.handle(request.decision, keepAlive: request.keepAlive, isHead: request.isHead, context: context)
        }
    }

    private func handle(_ decision: HandshakeDecision, keepAlive: Bool, isHead: Bool, context: ChannelHandlerContext) {
        switch decision {
        case .probe(let probe):
            let (status, body) = probe.answer(ready: self.gateway.readiness.withLockedValue { $0 })
            self.respond(status, body: body, keepAlive: keepAlive, isHead: isHead, context: context)
        case .refuse(let refusal):
            self.refuse(refusal, keepAlive: keepAlive, isHead: isHead, context: context)
        case .serveFile(let request):
            self.serveFile(request, keepAlive: keepAlive, context: context)
        case .upgrade(var request):
            request.arrived(over: self.client, trustedProxies: self.gateway.settings.trustedProxies)
            self.state.connectingBackend(key: request.key)
            WebSocketSessionStart.start(request, front: self, gateway: self.gateway, eventLoop: context.eventLoop)
        }
    }

    private func refuse(_ refusal: HTTPRefusal, keepAlive: Bool, isHead: Bool, context: ChannelHandlerContext) {
        refusal.record(client: self.clientDescription, route: nil, protocol: self.protocolName, logger: self.logger)
        self.respond(refusal.status, headers: refusal.headers, body: refusal.body, keepAlive: keepAlive && !refusal.closesConnection, isHead: isHead, context: context)
    }

    // MARK: Upgrade (the shared session path's front)

    var protocolName: String { "http/1.1" }

    /// A session over HTTP/1.1 is its connection: it counts in the limits with the connection's slot.
    func sessionSlot() -> Result<ClientSlot?, HTTPRefusal> {
        .success(self.client.slot)
    }

    func backendConnectStarted() {}
    func backendConnectEnded() {}

    var clientIsWaiting: Bool { self.context?.channel.isActive ?? false }

    func handshakeFailed() -> Bool { self.clientIsWaiting }

    func answer(_ refusal: HTTPRefusal) {
        guard let context else { return }
        self.respond(refusal.status, headers: refusal.headers, body: refusal.body, keepAlive: false, context: context)
    }

    func backendOpened() -> Bool { self.clientIsWaiting }

    /// The 101, then the HTTP handlers leave the pipeline and the relay's client leg takes their place.
    func accept(_ relay: RelayInstaller, fields: WebSocketResponseFields) throws {
        guard let context, let key = self.state.upgrade() else { throw ChannelError.ioOnClosedChannel }
        var headers = HTTPHeaders()
        headers.add(name: "Upgrade", value: "websocket")
        headers.add(name: "Connection", value: "Upgrade")
        headers.add(name: "Sec-WebSocket-Accept", value: WebSocketAccept.value(forKey: key))
        headers.add(contentsOf: fields.headers)
        headers.add(name: "Server", value: "wsgate")
        context.write(Self.wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .switchingProtocols, headers: headers))), promise: nil)
        context.writeAndFlush(Self.wrapOutboundOut(.end(nil)), promise: nil)

        try relay.attachClient(to: context.channel, replacing: [self.headLimiter, self.encoder, self], decoder: self.decoder)
    }

    func abort() {
        self.context?.close(promise: nil)
    }

    // MARK: Plain responses

    /// A response to HEAD carries the headers of the GET answer and no body.
    private func respond(_ status: HTTPResponseStatus, headers extra: HTTPHeaders = [:], contentType: String = "text/plain; charset=utf-8", body: String,
                         keepAlive: Bool, isHead: Bool = false, context: ChannelHandlerContext) {
        var headers = extra
        headers.add(name: "Content-Type", value: contentType)
        headers.add(name: "Content-Length", value: String(body.utf8.count))
        self.writeHead(status, headers: headers, keepAlive: keepAlive, context: context)
        if !isHead {
            context.write(Self.wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
        }
        self.endResponse(keepAlive: keepAlive, context: context)
    }

    private func writeHead(_ status: HTTPResponseStatus, headers extra: HTTPHeaders, keepAlive: Bool, context: ChannelHandlerContext) {
        var headers = extra
        headers.add(name: "Server", value: "wsgate")
        headers.add(name: "Connection", value: keepAlive ? "keep-alive" : "close")
        context.write(Self.wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
    }

    /// Ends the response; a kept-alive connection waits for its next request.
    private func endResponse(keepAlive: Bool, context: ChannelHandlerContext) {
        let done = context.writeAndFlush(Self.wrapOutboundOut(.end(nil)))
        switch self.state.responseEnded(keepAlive: keepAlive) {
        case .awaitNext(let read):
            self.armHandshakeTimer(until: context.eventLoop.now + self.gateway.settings.handshakeTimeout, context: context)
            if read { context.read() }
        case .close:
            done.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }

    // MARK: Static files

    private func serveFile(_ request: StaticRequest, keepAlive: Bool, context: ChannelHandlerContext) {
        self.state.servingFile()
        StaticFileServing.serve(request, front: self, eventLoop: context.eventLoop, allocator: context.channel.allocator, logger: self.logger)
    }

    /// Whether the connection stays open after the file being served.
    private var servingKeepAlive: Bool { self.state.keepAlive }

    func respond(_ status: HTTPResponseStatus, headers: [(String, String)], contentType: String, body: String, isHead: Bool) {
        guard let context else { return }
        self.respond(status, headers: HTTPHeaders(headers), contentType: contentType, body: body, keepAlive: self.servingKeepAlive, isHead: isHead, context: context)
    }

    func sendHead(_ status: HTTPResponseStatus, headers: [(String, String)], bodyFollows: Bool) {
        guard let context else { return }
        let keepAlive = self.servingKeepAlive
        self.writeHead(status, headers: HTTPHeaders(headers), keepAlive: keepAlive, context: context)
        if !bodyFollows { self.endResponse(keepAlive: keepAlive, context: context) }
    }

    func writeBodyChunk(_ chunk: ByteBuffer) -> EventLoopFuture<Void>? {
        self.context.map { $0.writeAndFlush(Self.wrapOutboundOut(.body(.byteBuffer(chunk)))) }
    }

    func endBody() {
        guard let context else { return }
        self.endResponse(keepAlive: self.servingKeepAlive, context: context)
    }

    func abandonBody() {
        self.state.close()
        self.context?.close(promise: nil)
    }

    // MARK: Flow control and errors

    func read(context: ChannelHandlerContext) {
        if self.state.read() { context.read() }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        guard error is HTTPParserError, self.state.answersMalformedRequests else {
            context.close(promise: nil)
            return
        }
        self.logger.info("refused request: malformed HTTP (\(error))", metadata: ["client": "\(self.clientDescription)", "status": "400"])
        self.handshakeTimer?.cancel()
        self.respond(.badRequest, body: "Bad Request: malformed HTTP\n", keepAlive: false, context: context)
    }
}

extension SocketAddress {
    /// `ip:port` for logs, or the socket path.
    var loggable: String {
        switch self {
        case .v4, .v6: return "\(self.ipAddress.map { $0.contains(":") ? "[\($0)]" : $0 } ?? "?"):\(self.port ?? 0)"
        case .unixDomainSocket: return self.pathname ?? "unix"
        }
    }
}
