import Logging
import NIOCore

/// The session path's branch for a handshake naming a held or shared session (``HubRequest``): the
/// first such handshake opens the service connection and its hub; later ones (a resume, a viewer)
/// are admitted by the hub, on the hub's loop, before their 101. Runs on the client's event loop.
enum HubSessionStart {
    static func start(_ request: UpgradeRequest, hub hubRequest: HubRequest, settings: HubSettings, slot: ClientSlot?, front: some SessionFront,
                      gateway: GatewayContext, eventLoop: EventLoop) {
        guard let id = hubRequest.key else { return }
        let route = request.route.configuration
        let key = HubTable.Key(route: route.path, id: id)
        let metrics = HubMetrics.forRoute(route.path)
        switch gateway.hubs.claim(key, on: eventLoop) {
        case .open:
            if hubRequest.resumeID != nil, let last = hubRequest.last, last > 0 {
                // It expects a session this gateway does not have (the window passed, or a restart).
                gateway.hubs.failed(key, BackendError.unreachable("no session to resume"))
                metrics.resumed(.unavailable)
                self.unavailable(request, reason: "no such session to resume", front: front, gateway: gateway, eventLoop: eventLoop)
                return
            }
            WebSocketSessionStart.connect(request, slot: slot, front: front, gateway: gateway, eventLoop: eventLoop, opened: { backend in
                self.open(request, key: key, resumeID: hubRequest.resumeID, settings: settings, backend: backend, front: front, gateway: gateway, eventLoop: eventLoop)
            }, failed: { error in
                gateway.hubs.failed(key, error)
            })
        case .join(let hub):
            self.join(hub, request, hubRequest, settings: settings, front: front, gateway: gateway, eventLoop: eventLoop)
        case .wait(let opening):
            opening.hop(to: eventLoop).assumeIsolated().whenComplete { result in
                guard front.clientIsWaiting else { return }
                switch result {
                case .success(let hub):
                    self.join(hub, request, hubRequest, settings: settings, front: front, gateway: gateway, eventLoop: eventLoop)
                case .failure(let error):
                    let failure = (error as? BackendError) ?? .unreachable("\(error)")
                    WebSocketSessionStart.refuse(HTTPRefusal(failure.status, "the session could not be opened: \(failure)", closesConnection: true, label: "backend"),
                                                 route: route.path, front: front, gateway: gateway)
                }
            }
        case .gone(let reason):
            metrics.resumed(.unavailable)
            self.unavailable(request, reason: reason, front: front, gateway: gateway, eventLoop: eventLoop)
        }
    }

    /// The first client: the service is connected, its hub takes it over, the client is the owner.
    private static func open(_ request: UpgradeRequest, key: HubTable.Key, resumeID: String?, settings: HubSettings, backend: BackendConnection, front: some SessionFront,
                             gateway: GatewayContext, eventLoop: EventLoop) {
        let route = request.route.configuration
        let hub = SessionHub(key: key, settings: settings, resumeID: resumeID, user: request.sessionOwner, clientAddress: request.clientAddress?.loggable ?? "?",
                             eventLoop: eventLoop, gateway: gateway)
        do {
            RelayInstaller.applyKeepalive(to: backend, gateway: gateway)
            try hub.start(backend: backend, route: route)
        } catch {
            gateway.logger.error("could not start the session's backend: \(error)", metadata: ["client": "\(front.clientDescription)", "route": "\(route.path)"])
            gateway.hubs.failed(key, error)
            hub.goAway(reason: "could not start")
            backend.channel.close(promise: nil)
            front.abort()
            return
        }
        let member = HubMember(hub: NIOLoopBound(hub, eventLoop: eventLoop), mayWrite: true)
        hub.admitOwner(NIOLoopBound(member, eventLoop: eventLoop), id: member.id)
        gateway.hubs.opened(key, hub: NIOLoopBound(hub, eventLoop: eventLoop), id: ObjectIdentifier(hub))
        // The connect path already told the front its backend is open.
        self.install(member, request, frontToldOpen: true, front: front, gateway: gateway, eventLoop: eventLoop)
    }

    /// A resume or a viewer: the hub decides on its own loop, the answer comes back here.
    private static func join(_ hub: NIOLoopBound<SessionHub>, _ request: UpgradeRequest, _ hubRequest: HubRequest, settings: HubSettings, front: some SessionFront,
                             gateway: GatewayContext, eventLoop: EventLoop) {
        let route = request.route.configuration.path
        let metrics = HubMetrics.forRoute(route)
        let member = HubMember(hub: hub, mayWrite: false)
        let bound = NIOLoopBound(member, eventLoop: eventLoop)
        let id = member.id
        let user = request.sessionOwner
        let admission = hub.eventLoop.submit { () -> SessionHub.Admission in
            hub.value.admit(bound, id: id, resumeID: hubRequest.resumeID, last: hubRequest.last, user: user)
        }
        admission.hop(to: eventLoop).assumeIsolated().whenComplete { result in
            switch result {
            case .success(.owner), .success(.viewer):
                if case .success(.owner) = result { member.mayWrite = true } else { member.mayWrite = settings.viewersMayWrite }
                guard front.clientIsWaiting else {
                    member.abandon()
                    return
                }
                self.install(member, request, front: front, gateway: gateway, eventLoop: eventLoop)
            case .success(.refused(.otherUser)):
                metrics.resumed(.otherUser)
                WebSocketSessionStart.refuse(HTTPRefusal(.forbidden, "the resume id belongs to another user's session", closesConnection: true, label: "resume"),
                                             route: route, front: front, gateway: gateway)
            case .success(.refused(.full)):
                WebSocketSessionStart.refuse(HTTPRefusal(.serviceUnavailable, "the shared session has its maximum of viewers (share.max_viewers)", closesConnection: true, label: "share_full"),
                                             route: route, front: front, gateway: gateway)
            case .success(.refused(.ended)):
                self.unavailable(request, reason: "the session has ended", front: front, gateway: gateway, eventLoop: eventLoop)
            case .success(.unavailable(let reason)):
                metrics.resumed(.unavailable)
                self.unavailable(request, reason: reason, front: front, gateway: gateway, eventLoop: eventLoop)
            case .failure(let error):
                WebSocketSessionStart.refuse(HTTPRefusal(.internalServerError, "\(error)", closesConnection: true, label: "internal"), route: route, front: front, gateway: gateway)
            }
        }
    }

    /// The handshake completes and the client is told at once why there is nothing to resume (1011):
    /// a browser sees a close code and reason, never an HTTP status.
    private static func unavailable(_ request: UpgradeRequest, reason: String, front: some SessionFront, gateway: GatewayContext, eventLoop: EventLoop) {
        gateway.logger.info("resume refused: \(reason)", metadata: ["client": "\(front.clientDescription)", "route": "\(request.route.configuration.path)"])
        let member = HubMember(hub: nil, mayWrite: false, unavailableReason: reason)
        self.install(member, request, front: front, gateway: gateway, eventLoop: eventLoop)
    }

    /// `frontToldOpen`: ``SessionFront/backendOpened()`` was called already (it moves an HTTP/2
    /// stream's state on, so only once).
    private static func install(_ member: HubMember, _ request: UpgradeRequest, frontToldOpen: Bool = false, front: some SessionFront,
                                gateway: GatewayContext, eventLoop: EventLoop) {
        guard frontToldOpen || front.backendOpened() else {
            member.abandon()
            return
        }
        let relay = RelayInstaller.prepare(member: member, request: request, eventLoop: eventLoop, gateway: gateway, clientProtocol: front.protocolName)
        do {
            try front.accept(relay, fields: WebSocketResponseFields(subprotocol: BackendConnector.subprotocolForByteStream(request), extensions: request.compression?.responseHeader))
            relay.start()
        } catch {
            gateway.logger.error("could not install the relay: \(error)", metadata: ["client": "\(front.clientDescription)", "protocol": "\(front.protocolName)"])
            relay.abandon()
            front.abort()
        }
    }
}
