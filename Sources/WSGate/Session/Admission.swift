import NIOCore
import NIOHTTP1

/// The checks between a valid handshake and the backend connection, in order: the client's
/// handshake rate (429), its credentials (401/403), and a dynamic target (403). Nothing is sent to
/// any backend before all pass.
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
                request.identityHeaders = try request.route.configuration.backendIdentity?.headers(user: certificateUser, claims: [:]) ?? []
            } catch {
                return eventLoop.makeFailedFuture(error)
            }
            return eventLoop.makeSucceededFuture(request)
        }
        let checked = request
        return routeGuard.authenticate(checked.credential, on: eventLoop).flatMapThrowing { identity in
            var admitted = checked
            admitted.credential = nil
            admitted.identity = identity.name ?? checked.identity
            admitted.credentialExpiry = identity.expires
            admitted.tokenLease = identity.lease
            admitted.identityHeaders = try checked.route.configuration.backendIdentity?.headers(user: identity.user ?? certificateUser, claims: identity.claims) ?? []
            if let target = try routeGuard.resolveTarget(token: checked.targetToken, identity: identity) {
                admitted.backend = target
            }
            return admitted
        }
    }
}
