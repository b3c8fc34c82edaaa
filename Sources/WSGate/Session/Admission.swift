import NIOCore
import NIOHTTP1

/// The checks between a valid handshake and the backend connection, in order: the client's
/// handshake rate (429), its credentials (401/403), a dynamic target (403), and the route's session
/// limits per user and per target (409, or the oldest session replaced). Nothing is sent to any
/// backend before all pass.
enum Admission {
    static func admit(_ request: UpgradeRequest, gateway: GatewayContext, on eventLoop: EventLoop) -> EventLoopFuture<UpgradeRequest> {
        if let refusal = gateway.clients.takeHandshake(request.clientAddress) {
            return eventLoop.makeFailedFuture(refusal.httpRefusal)
        }
        var request = request
        if let subjects = request.route.configuration.clientSubjects {
            guard let subject = request.clientCertificateSubject else {
                return eventLoop.makeFailedFuture(HTTPRefusal(.forbidden, "a client certificate is required", closesConnection: true, label: "client_certificate"))
            }
            guard ClientSubject.matches(subject, patterns: subjects) else {
                return eventLoop.makeFailedFuture(HTTPRefusal(.forbidden, "client certificate \(subject) is not allowed on this route", closesConnection: true, label: "client_certificate"))
            }
            request.identity = ClientSubject.commonName(subject) ?? subject
        }
        let certificateUser = request.identity
        guard let routeGuard = request.routing?.guards[request.route.index] else {
            // Fail closed: a route with auth or targets is never admitted without its guard.
            if request.route.configuration.auth != nil || request.route.configuration.targets != nil {
                return eventLoop.makeFailedFuture(HTTPRefusal(.internalServerError, "route \(request.route.configuration.path) has no guard", closesConnection: true, label: "internal"))
            }
            do throws(HTTPRefusal) {
                return eventLoop.makeSucceededFuture(try Self.admitted(request, as: RouteGuard.Identity(), certificateUser: certificateUser, routeGuard: nil, gateway: gateway))
            } catch {
                return eventLoop.makeFailedFuture(error)
            }
        }
        let checked = request
        return routeGuard.authenticate(checked.credential, request: checked, on: eventLoop).flatMapThrowing { identity in
            try Self.admitted(checked, as: identity, certificateUser: certificateUser, routeGuard: routeGuard, gateway: gateway)
        }
    }

    /// The request as admitted for `identity` (an empty one on routes without a guard): who it is,
    /// how long its credential holds, what the backend is told, its target, its places in the limits.
    private static func admitted(_ request: UpgradeRequest, as identity: RouteGuard.Identity, certificateUser: String?, routeGuard: RouteGuard?,
                                 gateway: GatewayContext) throws(HTTPRefusal) -> UpgradeRequest {
        var admitted = request
        admitted.credential = nil
        admitted.identity = identity.name ?? request.identity
        admitted.user = identity.user ?? certificateUser
        admitted.credentials = SessionCredentials(expiry: identity.expires, lease: identity.lease)
        admitted.identityHeaders = try (request.route.configuration.backendIdentity?.headers(user: admitted.user, claims: identity.claims) ?? [])
            + identity.extraHeaders
        if let target = try routeGuard?.resolveTarget(token: request.targetToken, identity: identity) {
            admitted.backend = target
        }
        admitted.sessionOwner = routeGuard == nil ? certificateUser : identity.quotaUser ?? certificateUser
        if var hub = admitted.hub, hub.shared, hub.key == nil {
            // `share.key: user`: a user's clients share one session; without a user there is nothing
            // to share (the client's own resume id, if any, still makes its session resumable).
            hub.key = admitted.sessionOwner ?? hub.resumeID
            hub.shared = admitted.sessionOwner != nil
            admitted.hub = hub.key == nil ? nil : hub
        }
        try Self.takePlaces(&admitted, user: identity.quotaUser ?? certificateUser, gateway: gateway)
        return admitted
    }

    /// A place under each of the route's session limits; at a limit, refused (409) or, with
    /// `on_limit: replace_oldest`, the sessions to replace are noted for the caller to close.
    private static func takePlaces(_ request: inout UpgradeRequest, user: String?, gateway: GatewayContext) throws(HTTPRefusal) {
        let route = request.route.configuration
        var wanted: [(SessionQuotas.Key, Int)] = []
        if let limit = route.limits.maxSessionsPerUser, let user {
            wanted.append((SessionQuotas.Key(route: route.path, kind: .user, value: user), limit))
        }
        if let limit = route.limits.maxSessionsPerTarget {
            wanted.append((SessionQuotas.Key(route: route.path, kind: .target, value: request.backend.description), limit))
        }
        for (key, limit) in wanted {
            switch gateway.quotas.admit(key, limit: limit, onLimit: route.limits.onLimit) {
            case .admitted(let ticket, let replacing):
                request.credentials.quotaTickets.append(ticket)
                request.replacing.append(contentsOf: replacing)
            case .refused(let refusal):
                // Places taken for the other limit are given back as the tickets are dropped.
                request.credentials.quotaTickets = []
                throw refusal
            }
        }
    }
}
