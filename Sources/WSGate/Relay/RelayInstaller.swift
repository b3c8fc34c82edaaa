import NIOCore

/// Wires a session between a client channel that is about to carry WebSocket frames and a connected
/// backend. Transport-agnostic: the HTTP/1.1 front uses it after its 101; an HTTP/2 stream can too.
///
/// Every pipeline change of a session is made here: ``prepare(backend:route:clientAddress:eventLoop:gateway:)``
/// builds the legs and installs the backend one; the front answers the client and gives
/// ``clientLeg`` its transport (``attachClient(to:replacing:decoder:)`` for HTTP/1.1, the stream
/// itself for HTTP/2); ``start()`` lets bytes flow, or ``abandon()`` ends a session whose client
/// could not be answered.
struct RelayInstaller {
    let clientLeg: WebSocketLeg
    private let session: RelaySession
    /// A session of its own: the backend and its leg. A member of a held or shared session: its port.
    private let backend: BackendConnection?
    private let backendLeg: RelayPartner
    private let member: HubMember?

    static func prepare(
        backend: BackendConnection,
        route: RouteConfiguration,
        clientAddress: SocketAddress?,
        peerAddress: SocketAddress? = nil,
        eventLoop: EventLoop,
        gateway: GatewayContext,
        clientProtocol: String,
        compression: DeflateParameters? = nil,
        identity: String? = nil,
        credentials: SessionCredentials = SessionCredentials()
    ) throws -> RelayInstaller {
        // Client payload may stay masked for the one-pass remask unless the backend leg compresses it.
        let toWebSocket: Bool
        switch backend.url {
        case .webSocket: toWebSocket = backend.compression == nil
        case .tcp, .unix: toWebSocket = false
        }
        Self.applyKeepalive(to: backend, gateway: gateway)
        let (session, clientLeg) = Self.listedSession(
            route: route, backend: backend.url, clientAddress: clientAddress, peerAddress: peerAddress, identity: identity, credentials: credentials,
            compression: compression, keepsMasked: toWebSocket, eventLoop: eventLoop, gateway: gateway, clientProtocol: clientProtocol
        )
        let backendLeg: RelayPartner
        let backendHandler: ChannelHandler
        switch backend.url {
        case .tcp, .unix:
            let leg = TCPLegHandler(session: session, route: route)
            leg.partner = clientLeg
            backendLeg = leg
            backendHandler = leg
        case .webSocket:
            let leg = WebSocketLeg(side: .backend, session: session, maxMessageBytes: route.limits.maxMessageBytes, maxFrameBytes: route.limits.maxFrameBytes,
                                   compression: backend.compression.map { LegCompression(backend: $0, settings: route.compression, maxMessageBytes: route.limits.maxMessageBytes) })
            leg.partner = clientLeg
            backendLeg = leg
            backendHandler = WebSocketLegHandler(leg: leg, eventLoop: backend.channel.eventLoop)
        }
        clientLeg.partner = backendLeg
        session.backendLeg = backendLeg
        if let record = route.record {
            let recorder = SessionRecorder.start(record, route: route.path, backend: backend.url, client: clientAddress?.loggable ?? "?",
                                                 protocol: clientProtocol, eventLoop: eventLoop, logger: gateway.logger)
            session.recorder = recorder
            clientLeg.partner = RecordingTap(backendLeg, recorder: recorder, direction: .clientToBackend)
            switch backendLeg {
            case let leg as TCPLegHandler: leg.partner = RecordingTap(clientLeg, recorder: recorder, direction: .backendToClient)
            case let leg as WebSocketLeg: leg.partner = RecordingTap(clientLeg, recorder: recorder, direction: .backendToClient)
            default: break
            }
        }
        try backend.channel.pipeline.syncOperations.addHandler(backendHandler)
        return RelayInstaller(clientLeg: clientLeg, session: session, backend: backend, backendLeg: backendLeg, member: nil)
    }

    /// A client of a held or shared session: its leg's partner is `member`, which the hub feeds.
    static func prepare(
        member: HubMember,
        request: UpgradeRequest,
        eventLoop: EventLoop,
        gateway: GatewayContext,
        clientProtocol: String
    ) -> RelayInstaller {
        let (session, clientLeg) = Self.listedSession(
            route: request.route.configuration, backend: request.backend, clientAddress: request.clientAddress, peerAddress: request.peerAddress,
            identity: request.identity, credentials: request.credentials, compression: request.compression, keepsMasked: false,
            eventLoop: eventLoop, gateway: gateway, clientProtocol: clientProtocol
        )
        member.attach(session: session, clientLeg: clientLeg)
        clientLeg.partner = member
        session.backendLeg = member
        return RelayInstaller(clientLeg: clientLeg, session: session, backend: nil, backendLeg: member, member: member)
    }

    /// A session listed in the registry and counted, with its client leg: the same for a relay of
    /// its own and for a member of a held or shared session.
    private static func listedSession(
        route: RouteConfiguration, backend: BackendURL, clientAddress: SocketAddress?, peerAddress: SocketAddress?, identity: String?, credentials: SessionCredentials,
        compression: DeflateParameters?, keepsMasked: Bool, eventLoop: EventLoop, gateway: GatewayContext, clientProtocol: String
    ) -> (RelaySession, WebSocketLeg) {
        let registry = gateway.sessions
        let session = RelaySession(
            logger: gateway.logger, clientAddress: clientAddress, peerAddress: peerAddress, route: route, backend: backend, identity: identity, credentials: credentials,
            eventLoop: eventLoop, closeTimeout: gateway.settings.closeTimeout, clientProtocol: clientProtocol, registry: registry
        )
        session.id = registry.add(session: session, on: eventLoop)
        for ticket in credentials.quotaTickets { ticket.attach(sessionID: session.id) }
        session.metrics.started.increment()
        session.metrics.active.increment()
        let clientLeg = WebSocketLeg(side: .client, session: session, maxMessageBytes: route.limits.maxMessageBytes, maxFrameBytes: route.limits.maxFrameBytes, keepsMasked: keepsMasked,
                                     compression: compression.map { LegCompression(parameters: $0, settings: route.compression, maxMessageBytes: route.limits.maxMessageBytes) },
                                     rateLimit: SessionRateLimit(rates: route.limits.rates, now: .now()))
        session.clientLeg = clientLeg
        return (session, clientLeg)
    }

    /// TCP keepalive on a backend connection (not a unix socket's): a safety net, not worth
    /// refusing a session over.
    static func applyKeepalive(to backend: BackendConnection, gateway: GatewayContext) {
        if case .unix = backend.url { return }
        do {
            try SocketKeepalive.apply(gateway.settings.keepalive, to: backend.channel)
        } catch {
            gateway.logger.debug("backend keepalive not set: \(error)", metadata: ["backend": "\(backend.url)"])
        }
    }

    /// HTTP/1.1 after its 101: the HTTP handlers leave before the relay writes its first frame, the
    /// client leg's handler takes their place, and the request decoder goes last, handing the bytes
    /// that followed the request (early frames) to the leg. (An HTTP/2 stream is the leg's transport
    /// itself: nothing in its pipeline changes.)
    func attachClient(to channel: Channel, replacing handlers: [RemovableChannelHandler], decoder: RemovableChannelHandler) throws {
        let sync = channel.pipeline.syncOperations
        for handler in handlers { sync.removeHandler(handler, promise: nil) }
        try channel.syncOptions?.setOption(ChannelOptions.writeBufferWaterMark, value: BackendConnector.writeBufferWaterMark)
        try sync.addHandler(WebSocketLegHandler(leg: self.clientLeg, eventLoop: channel.eventLoop))
        sync.removeHandler(decoder, promise: nil)
    }

    /// The client could not be given its leg (the front failed to answer): the client leg ends as
    /// a vanished peer would, which closes the backend leg and lets the session finish.
    func abandon() {
        self.clientLeg.transportClosed()
    }

    /// Call once ``clientLeg`` is in the client pipeline.
    func start() {
        self.session.startIdleTimer()
        guard let backend = self.backend else {
            let clientLeg = self.clientLeg
            let member = self.member
            self.session.eventLoop.assumeIsolated().execute {
                clientLeg.relayFlush()
                clientLeg.start()
                member?.start()
            }
            return
        }
        let channel = backend.channel
        guard channel.isActive else {
            // The backend hung up between its handshake and now: its leg never saw the channel close.
            self.clientLeg.relayClose(code: .internalError, reason: "backend closed the connection")
            self.session.legFinished()
            return
        }
        let sync = channel.pipeline.syncOperations
        // Bytes that followed a WebSocket backend's 101 reach the backend leg now.
        if case .webSocket = backend.url {
            sync.removeHandler(name: BackendHandshakeHandler.name, promise: nil)
        }
        try? channel.syncOptions?.setOption(ChannelOptions.autoRead, value: true)
        // NIO's HTTP decoders hand over the bytes that followed a head (early frames from the client,
        // a first message from the backend) in a task of their own when they leave the pipeline, with
        // no read-complete after them; this task runs after those, so whatever they relayed is flushed.
        let backendLeg = self.backendLeg
        let clientLeg = self.clientLeg
        channel.eventLoop.assumeIsolated().execute {
            backendLeg.relayFlush()
            clientLeg.relayFlush()
            clientLeg.start()
        }
    }
}
