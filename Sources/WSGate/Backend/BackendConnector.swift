import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// A connected backend, handshake done, not yet reading: the relay starts reads once it is installed.
public struct BackendConnection: Sendable {
    public var channel: Channel
    /// The subprotocol to answer the client with.
    public var subprotocol: String?
    /// permessage-deflate as agreed with a WebSocket backend that was offered it.
    public var compression: BackendDeflate? = nil
    /// Where it goes (the route's backend, or the dynamic target chosen for the session).
    public var url: BackendURL
}

/// Opens the backend leg of a session on the client's event loop (so the relay needs no locks),
/// within the route's connect timeout.
public struct BackendConnector: Sendable {
    /// For pools' per-target lines (a target failed, was ejected).
    var logger: Logger
    /// Targets no new session may use.
    var drains = TargetDrains()
    /// Socket buffers the relay can fill before it stops reading the other side.
    static let writeBufferWaterMark = ChannelOptions.Types.WriteBufferWaterMark(low: 32 * 1024, high: 64 * 1024)

    public func connect(_ request: UpgradeRequest, on eventLoop: EventLoop) -> EventLoopFuture<BackendConnection> {
        let route = request.route.configuration
        if route.targets == nil, let pool = request.routing?.pools[request.route.index] {
            return Self.connect(request, pool: pool, drains: self.drains, logger: self.logger, on: eventLoop)
        }
        if self.drains.isDraining(request.backend) {
            return eventLoop.makeFailedFuture(BackendError.draining(request.backend.description))
        }
        return Self.connect(request, to: request.backend, timeout: route.limits.connectTimeout, on: eventLoop)
    }

    /// One attempt: `backend` (the route's, a pool's target, or a dynamic target) within `timeout`.
    static func connect(_ request: UpgradeRequest, to backend: BackendURL, timeout: TimeAmount, on eventLoop: EventLoop) -> EventLoopFuture<BackendConnection> {
        let route = request.route.configuration
        let promise = eventLoop.makePromise(of: BackendConnection.self)
        let deadline = eventLoop.scheduleTask(in: timeout) {
            promise.fail(BackendError.timedOut(after: "\(timeout.prettyDescription)"))
        }
        promise.futureResult.whenComplete { _ in deadline.cancel() }
        let bootstrap = Self.bootstrap(on: eventLoop, timeout: timeout)

        switch backend {
        case .tcp(let host, let port):
            let noDelay = bootstrap.channelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
            Self.finishPlain(Self.connect(noDelay, host: host, port: port), request: request, backend: backend, timeout: timeout, promise: promise)
        case .unix(let path):
            Self.finishPlain(bootstrap.connect(unixDomainSocketPath: path), request: request, backend: backend, timeout: timeout, promise: promise)
        case .webSocket(let host, let port, let path, let query, let tls):
            let key = WebSocketAccept.makeKey()
            let target = RouteTable.backendTarget(clientTarget: request.head.uri, route: route, backendPath: path, backendQuery: query)
            let headers = BackendRequestHeaders.make(client: request.head, clientAddress: request.peerAddress, keepsForwardingHeaders: request.peerIsTrustedProxy, clientUsesTLS: request.clientUsesTLS, backendHost: host, backendPort: port, key: key, subprotocols: request.subprotocols, offersCompression: route.backendCompression,
                                                       identityHeaderNames: ((route.backendIdentity?.headerNames ?? []) + request.identityHeaders.map(\.name)).map { $0.lowercased() }, identity: request.identityHeaders)
            let (connected, ready) = Self.openWebSocket(
                bootstrap, on: eventLoop, host: host, port: port, target: target, headers: headers, key: key,
                tls: tls ? request.routing?.backendTLS[request.route.index] : nil, serverName: route.backendTLS.serverName,
                subprotocols: request.subprotocols, offersCompression: route.backendCompression
            )
            Self.closeIfAbandoned(connected, promise: promise)
            ready.map { channel, outcome in
                BackendConnection(channel: channel, subprotocol: outcome.subprotocol, compression: outcome.compression, url: backend)
            }.flatMapErrorThrowing { error in
                throw Self.describe(error, timeout: timeout)
            }.whenComplete { result in
                promise.completeWith(result)  // ignored when the deadline already failed it
            }
        }
        return promise.futureResult
    }

    static func bootstrap(on eventLoop: EventLoop, timeout: TimeAmount) -> ClientBootstrap {
        ClientBootstrap(group: eventLoop)
            .connectTimeout(timeout)
            .channelOption(.autoRead, value: false)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelOption(.writeBufferWaterMark, value: Self.writeBufferWaterMark)
            .channelOption(.recvAllocator, value: ReceiveBuffers())
    }

    /// Connects and runs the opening handshake (TLS first for `wss://`). `connected` is the TCP
    /// connection (for closing it if the caller gives up mid-handshake); `ready` succeeds with the
    /// 101's outcome, bytes that followed it held back by the ``BackendHandshakeHandler``.
    static func openWebSocket(_ bootstrap: ClientBootstrap, on eventLoop: EventLoop, host: String, port: Int, target: String, headers: HTTPHeaders, key: String, tls: NIOSSLContext?, serverName: String?,
                              subprotocols: [String], offersCompression: Bool) -> (connected: EventLoopFuture<Channel>, ready: EventLoopFuture<(Channel, BackendHandshake.Outcome)>) {
        guard let request = BackendHandshake.request(target: target, headers: headers, allocator: ByteBufferAllocator()) else {
            let refused = eventLoop.makeFailedFuture(BackendError.invalidHandshake("the request holds a header that cannot be sent (CR, LF or NUL)")) as EventLoopFuture<Channel>
            return (refused, refused.map { ($0, BackendHandshake.Outcome()) })
        }
        let sni = serverName ?? (Self.isIPAddress(host) ? nil : host)
        let handshake = eventLoop.makePromise(of: BackendHandshake.Outcome.self)
        let machine = BackendHandshake(key: key, offeredSubprotocols: subprotocols, offeredCompression: offersCompression)
        let configured = bootstrap
            .channelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    if let tls {
                        try sync.addHandler(NIOSSLClientHandler(context: tls, serverHostname: sni))
                    }
                    try sync.addHandler(BackendHandshakeHandler(request: request, handshake: machine, promise: handshake), name: BackendHandshakeHandler.name)
                }
            }
        let connected = Self.connect(configured, host: host, port: port)
        connected.whenFailure { handshake.fail($0) }
        return (connected, connected.and(handshake.futureResult))
    }

    private static func finishPlain(_ connected: EventLoopFuture<Channel>, request: UpgradeRequest, backend: BackendURL, timeout: TimeAmount, promise: EventLoopPromise<BackendConnection>) {
        let subprotocol = Self.subprotocolForByteStream(request)
        Self.closeIfAbandoned(connected, promise: promise)
        connected.map { channel in
            if let version = request.route.configuration.backendProxyProtocol {
                // Before any client byte: the service learns who the client is, then the stream starts.
                var header = channel.allocator.buffer(capacity: 64)
                let user = request.user.map { [(type: ProxyProtocol.userTLVType, value: Array($0.utf8))] } ?? []
                ProxyProtocol.encode(version, source: request.clientAddress, destination: request.localAddress, tlvs: user, into: &header)
                channel.writeAndFlush(header, promise: nil)
            }
            return BackendConnection(channel: channel, subprotocol: subprotocol, url: backend)
        }.flatMapErrorThrowing { error in
            throw Self.describe(error, timeout: timeout)
        }.whenComplete { result in
            promise.completeWith(result)  // ignored when the deadline already failed it
        }
    }

    /// When the deadline fails the session first, a connection that is still handshaking is closed.
    private static func closeIfAbandoned(_ connected: EventLoopFuture<Channel>, promise: EventLoopPromise<BackendConnection>) {
        promise.futureResult.whenFailure { _ in
            connected.whenSuccess { $0.close(promise: nil) }
        }
    }

    /// The answer on a byte-stream route. The service gets the client's bytes as they are, so the
    /// client already speaks the service's protocol; naming it lets a browser accept the handshake
    /// (it fails one that offered subprotocols and got none back). With the route's `subprotocols`
    /// list, the client's first offer in it (the validator refused clients offering none of them).
    /// Without one: `binary` when offered (websockify's clients offer it beside `base64`, which is
    /// never answered: wsgate relays bytes, not base64 text), else the client's first offer.
    static func subprotocolForByteStream(_ request: UpgradeRequest) -> String? {
        let offered = request.subprotocols
        if request.route.configuration.subprotocols == nil {
            return offered.contains("binary") ? "binary" : offered.first { $0 != "base64" }
        }
        return offered.first
    }

    /// IP literals connect directly; only names go through the resolver (a thread hop per connection).
    static func connect(_ bootstrap: ClientBootstrap, host: String, port: Int) -> EventLoopFuture<Channel> {
        if let address = try? SocketAddress(ipAddress: host, port: port) {
            return bootstrap.connect(to: address)
        }
        return bootstrap.connect(host: host, port: port)
    }

    static func isIPAddress(_ host: String) -> Bool {
        (try? SocketAddress(ipAddress: host, port: 0)) != nil
    }

    static func describe(_ error: Error, timeout: TimeAmount) -> BackendError {
        if let error = error as? BackendError { return error }
        if let error = error as? NIOSSLError { return .unreachable("TLS: \(error)") }
        if case ChannelError.connectTimeout = error { return .timedOut(after: timeout.prettyDescription) }
        if let error = error as? NIOConnectionError {
            if error.connectionErrors.contains(where: { if case ChannelError.connectTimeout = $0.error { return true } else { return false } }) {
                return .timedOut(after: timeout.prettyDescription)
            }
            if let first = error.connectionErrors.first { return .unreachable("\(first.target): \(first.error)") }
            if let dns = error.dnsAError ?? error.dnsAAAAError { return .unreachable("cannot resolve \(error.host): \(dns)") }
            return .unreachable("cannot connect to \(error.host):\(error.port)")
        }
        return .unreachable("\(error)")
    }
}

extension TimeAmount {
    public var prettyDescription: String {
        let ms = self.nanoseconds / 1_000_000
        if ms % 1000 == 0 { return "\(ms / 1000)s" }
        return "\(ms)ms"
    }
}
