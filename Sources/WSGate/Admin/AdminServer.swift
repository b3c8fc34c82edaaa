import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// The admin listener: `GET /metrics` (whatever `metrics` renders: Prometheus text from the
/// `wsgate` command), `/healthz` (the process answers), `/readyz` (listening and not draining) and
/// `/status` (routes and their targets' health as JSON), `/sessions` (list and end live sessions,
/// ``SessionsEndpoint``). With a token file, everything but the probes needs `Authorization: Bearer`.
/// Plain HTTP/1.1 through NIO's server pipeline; keep it on a private address. A connection that
/// sends and reads nothing for ``idleTimeout`` is closed, as is one whose request says
/// `Connection: close` (or is HTTP/1.0 without keep-alive), once it is answered.
final class AdminServer: Sendable {
    static let idleTimeout = TimeAmount.seconds(10)

    typealias Readiness = @Sendable () -> Bool
    typealias MetricsText = @Sendable () -> String
    typealias StatusJSON = @Sendable () -> String

    private let channel: Channel

    private init(channel: Channel) {
        self.channel = channel
    }

    var localAddress: SocketAddress? { self.channel.localAddress }

    /// What the handlers share: the live sessions and the tokens operators present.
    struct Operations: Sendable {
        var sessions: SessionRegistry?
        var drains: TargetDrains?
        var tokens: WatchedFile<BearerTokens>?
        var logger: Logger
    }

    static func start(address: ListenAddress, group: EventLoopGroup, logger: Logger, ready: @escaping Readiness, metrics: MetricsText?, status: @escaping StatusJSON,
                      sessions: SessionRegistry? = nil, drains: TargetDrains? = nil, tokenFile: String? = nil) async throws -> AdminServer {
        let tokens = try tokenFile.map { file in
            try WatchedFile(path: file, parse: { BearerTokens(file: $0) }, onReloadError: { path, error in
                logger.error("could not re-read \(path), keeping its previous contents: \(error)", metadata: ["listener": "admin"])
            })
        }
        let operations = Operations(sessions: sessions, drains: drains, tokens: tokens, logger: logger)
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(IdleStateHandler(allTimeout: Self.idleTimeout))
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(AdminHandler(ready: ready, metrics: metrics, status: status, operations: operations))
                }
            }
            .bind(host: address.host, port: address.port).get()
        logger.info("admin listening", metadata: ["address": "\(channel.localAddress?.loggable ?? address.description)"])
        return AdminServer(channel: channel)
    }

    func stop() async {
        try? await self.channel.close()
    }
}

private final class AdminHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let ready: AdminServer.Readiness
    private let metrics: AdminServer.MetricsText?
    private let status: AdminServer.StatusJSON
    private let operations: AdminServer.Operations
    private var head: HTTPRequestHead?
    /// Kept for answers that complete later (a session listing); nil once the handler is gone.
    private var context: ChannelHandlerContext?

    init(ready: @escaping AdminServer.Readiness, metrics: AdminServer.MetricsText?, status: @escaping AdminServer.StatusJSON, operations: AdminServer.Operations) {
        self.ready = ready
        self.metrics = metrics
        self.status = status
        self.operations = operations
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)  // a half-sent request, or a kept-alive connection nobody uses
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch Self.unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
        case .body:
            break
        case .end:
            guard let head = self.head else { return }
            self.head = nil
            self.answer(head, context: context)
        }
    }

    private func answer(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = RouteTable.path(ofTarget: head.uri)
        let plain = "text/plain; charset=utf-8"
        let (status, contentType, body): (HTTPResponseStatus, String, String)
        if head.method == .GET || head.method == .HEAD, let probe = Probe(path: path) {
            let answer = probe.answer(ready: self.ready())
            (status, contentType, body) = (answer.status, plain, answer.body)
        } else if let tokens = self.operations.tokens, !Self.presentsToken(head, tokens: tokens.value) {
            var headers = HTTPHeaders()
            headers.add(name: "WWW-Authenticate", value: "Bearer realm=\"wsgate-admin\"")
            self.operations.logger.warning("admin request without a valid token", metadata: ["path": "\(path)", "client": "\(context.remoteAddress?.loggable ?? "?")"])
            self.respond(head, status: .unauthorized, contentType: plain, body: "a bearer token from admin.token_file is required\n", extraHeaders: headers, context: context)
            return
        } else if let pending = self.operationsAnswer(head, on: context.eventLoop) {
            // What changes sessions or targets is logged, with who asked.
            if head.method != .GET && head.method != .HEAD {
                self.operations.logger.info("admin request", metadata: ["method": "\(head.method)", "target": "\(head.uri)", "client": "\(context.remoteAddress?.loggable ?? "?")"])
            }
            pending.assumeIsolated().whenComplete { result in
                // The connection may have gone while the sessions' loops answered.
                guard let context = self.context else { return }
                switch result {
                case .success(let response):
                    self.respond(head, status: response.status, contentType: response.contentType, body: response.body, context: context)
                case .failure(let error):
                    self.respond(head, status: .internalServerError, contentType: plain, body: "\(error)\n", context: context)
                }
            }
            return
        } else {
            switch (head.method, path) {
            case (.GET, "/metrics"):
                if let metrics = self.metrics {
                    (status, contentType, body) = (.ok, "text/plain; version=0.0.4; charset=utf-8", metrics())
                } else {
                    (status, contentType, body) = (.notFound, plain, "metrics are not collected in this process\n")
                }
            case (.GET, "/status"), (.HEAD, "/status"):
                (status, contentType, body) = (.ok, "application/json", self.status())
            case (_, "/healthz"), (_, "/readyz"), (_, "/metrics"), (_, "/status"):
                (status, contentType, body) = (.methodNotAllowed, plain, "use GET\n")
            default:
                (status, contentType, body) = (.notFound, plain, "not found (try /metrics, /status, /sessions, /healthz, /readyz)\n")
            }
        }
        self.respond(head, status: status, contentType: contentType, body: body, context: context)
    }

    /// The session and target endpoints' answer; nil: the path is none of theirs.
    private func operationsAnswer(_ head: HTTPRequestHead, on eventLoop: EventLoop) -> EventLoopFuture<AdminResponse>? {
        guard let sessions = self.operations.sessions else { return nil }
        if let drains = self.operations.drains,
           let response = TargetsEndpoint.answer(method: head.method, target: head.uri, drains: drains, registry: sessions, logger: self.operations.logger, on: eventLoop) {
            return eventLoop.makeSucceededFuture(response)
        }
        return SessionsEndpoint.answer(method: head.method, target: head.uri, registry: sessions, on: eventLoop)
    }

    /// `Authorization: Bearer <token>` with a token from the file.
    private static func presentsToken(_ head: HTTPRequestHead, tokens: BearerTokens) -> Bool {
        guard let value = head.headers.first(name: "authorization"), case .token(let token) = CredentialExtractor.parseAuthorization(value) else { return false }
        return tokens.contains(token)
    }

    private func respond(_ head: HTTPRequestHead, status: HTTPResponseStatus, contentType: String, body: String, extraHeaders: HTTPHeaders = [:], context: ChannelHandlerContext) {
        var headers = extraHeaders
        headers.add(name: "Content-Type", value: contentType)
        headers.add(name: "Content-Length", value: String(body.utf8.count))
        headers.add(name: "Server", value: "wsgate")
        let keepAlive = head.isKeepAlive
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        context.write(Self.wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
        if head.method != .HEAD {
            context.write(Self.wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
        }
        let written = context.writeAndFlush(Self.wrapOutboundOut(.end(nil)))
        if !keepAlive {
            written.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }
}

/// An answer of the admin API's JSON endpoints (``SessionsEndpoint``, ``TargetsEndpoint``).
struct AdminResponse {
    var status: HTTPResponseStatus
    var contentType = "application/json"
    var body: String

    static func error(_ status: HTTPResponseStatus, _ message: String) -> Self {
        Self(status: status, body: "{\"error\":\(JSONString.quoted(message))}\n")
    }
}
