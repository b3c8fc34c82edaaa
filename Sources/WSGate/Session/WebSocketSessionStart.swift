import Logging
import NIOCore

/// From a valid, routed WebSocket request to a running relay, for both fronts: admission (rate,
/// credentials, target), the session's place in the connection limits, the backend connect, the
/// success answer and the relay install. Every refusal and failure is logged and counted here, with
/// the front's protocol, so HTTP/1.1 and HTTP/2 cannot drift apart.
enum WebSocketSessionStart {
    static func start(_ request: UpgradeRequest, front: some SessionFront, gateway: GatewayContext, eventLoop: EventLoop) {
        Admission.admit(request, gateway: gateway, on: eventLoop).assumeIsolated().whenComplete { result in
            let route = request.route.configuration.path
            switch result {
            case .failure(let error):
                let refusal = (error as? HTTPRefusal) ?? HTTPRefusal(.internalServerError, "\(error)", closesConnection: true, label: "internal")
                self.refuse(refusal, route: route, front: front, gateway: gateway)
            case .success(let admitted):
                // The newer session takes the older ones' places (`on_limit: replace_oldest`).
                for id in admitted.replacing {
                    _ = gateway.sessions.close(id: id, code: nil, reason: .replaced)
                }
                // Admission may have waited (an auth check): the client may have left meanwhile.
                guard front.clientIsWaiting else { return }
                switch front.sessionSlot() {
                case .failure(let refusal):
                    self.refuse(refusal, route: route, front: front, gateway: gateway)
                case .success(let slot):
                    if let hub = admitted.hub, hub.key != nil, let settings = HubSettings(route: admitted.route.configuration) {
                        HubSessionStart.start(admitted, hub: hub, settings: settings, slot: slot, front: front, gateway: gateway, eventLoop: eventLoop)
                    } else {
                        self.connect(admitted, slot: slot, front: front, gateway: gateway, eventLoop: eventLoop)
                    }
                }
            }
        }
    }

    static func refuse(_ refusal: HTTPRefusal, route: String, front: some SessionFront, gateway: GatewayContext) {
        guard front.handshakeFailed() else { return }  // the client left while admission ran
        refusal.record(client: front.clientDescription, route: route, protocol: front.protocolName, logger: gateway.logger)
        front.answer(refusal)
    }

    /// The connect owns the session's slot until it completes: its socket stays open until then,
    /// whether or not the client is still there.
    /// `opened`: what to do with the backend instead of a relay of its own (a held or shared
    /// session's first client); `failed`: told when there is no backend for it.
    static func connect(_ request: UpgradeRequest, slot: ClientSlot?, front: some SessionFront, gateway: GatewayContext, eventLoop: EventLoop,
                        opened: ((BackendConnection) -> Void)? = nil, failed: ((Error) -> Void)? = nil) {
        let route = request.route.configuration
        let logger = gateway.logger
        let started = NIODeadline.now()
        slot?.addOwner()
        front.backendConnectStarted()
        gateway.connector.connect(request, on: eventLoop).assumeIsolated().whenComplete { result in
            slot?.release()
            front.backendConnectEnded()
            var metadata: Logger.Metadata = ["client": "\(front.clientDescription)", "route": "\(route.path)", "protocol": "\(front.protocolName)"]
            switch result {
            case .failure(let error):
                let failure = (error as? BackendError) ?? .unreachable("\(error)")
                metadata["backend"] = "\(request.backend)"
                metadata["status"] = "\(failure.status.code)"
                logger.warning("refused handshake: \(failure)", metadata: metadata)
                GatewayMetrics.backendFailed(route: route.path, backend: request.backend, status: Int(failure.status.code))
                failed?(failure)
                if front.handshakeFailed() {
                    front.answer(HTTPRefusal(failure.status, "\(failure)", closesConnection: true, label: "backend"))
                }
            case .success(let backend):
                let elapsed = NIODeadline.now() - started
                GatewayMetrics.backendConnected(route: route.path, backend: request.backend, protocol: front.protocolName, after: elapsed)
                guard front.backendOpened() else {
                    logger.info("client went away while the backend was being opened", metadata: metadata)
                    backend.channel.close(promise: nil)
                    failed?(BackendError.unreachable("the client went away"))
                    return
                }
                metadata["ms"] = "\(elapsed.nanoseconds / 1_000_000)"
                logger.debug("backend ready", metadata: metadata)
                if let opened {
                    opened(backend)
                } else {
                    self.install(request, backend: backend, front: front, gateway: gateway, eventLoop: eventLoop)
                }
            }
        }
    }

    private static func install(_ request: UpgradeRequest, backend: BackendConnection, front: some SessionFront, gateway: GatewayContext, eventLoop: EventLoop) {
        var prepared: RelayInstaller?
        do {
            let relay = try RelayInstaller.prepare(
                backend: backend, route: request.route.configuration, clientAddress: request.clientAddress, peerAddress: request.peerAddress,
                eventLoop: eventLoop, gateway: gateway, clientProtocol: front.protocolName, compression: request.compression,
                identity: request.identity, credentials: request.credentials
            )
            prepared = relay
            try front.accept(relay, fields: WebSocketResponseFields(subprotocol: backend.subprotocol, extensions: request.compression?.responseHeader))
            relay.start()
        } catch {
            gateway.logger.error("could not install the relay: \(error)", metadata: ["client": "\(front.clientDescription)", "protocol": "\(front.protocolName)"])
            // A session that was set up ends as one (its line, its metrics, its place in the registry).
            prepared?.abandon()
            backend.channel.close(promise: nil)
            front.abort()
        }
    }
}
