import Logging
import Metrics
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// Every route's ``RouteGuard``, made when the gateway starts (files read and keys parsed then, so
/// a bad key file stops startup rather than failing handshakes).
final class RouteGuards: Sendable {
    private let guards = NIOLockedValueBox<[Int: RouteGuard]>([:])
    let passwordChecks = PasswordChecks()

    func prepare(_ routes: RouteTable, logger: Logger) async throws {
        var made: [Int: RouteGuard] = [:]
        for route in routes.routes where route.configuration.auth != nil || route.configuration.targets != nil {
            do {
                made[route.index] = try await RouteGuard.make(route.configuration, logger: logger, passwordChecks: self.passwordChecks)
            } catch {
                throw ConfigurationError(key: "route \(route.configuration.path)", message: "\(error)")
            }
        }
        self.guards.withLockedValue { $0 = made }
    }

    func forRoute(_ index: Int) -> RouteGuard? {
        self.guards.withLockedValue { $0[index] }
    }
}

/// The checks between a valid handshake and the backend connection, in order: the client's
/// handshake rate (429), its credentials (401/403), and a dynamic target (403). Nothing is sent to
/// any backend before all pass.
enum Admission {
    static func admit(_ request: UpgradeRequest, gateway: GatewayContext, on eventLoop: EventLoop) -> EventLoopFuture<UpgradeRequest> {
        if let refusal = gateway.clients.takeHandshake(request.clientAddress) {
            var headers = HTTPHeaders()
            if case .handshakeRate(let seconds) = refusal { headers.add(name: "Retry-After", value: String(seconds)) }
            return eventLoop.makeFailedFuture(HTTPRefusal(HTTPResponseStatus(statusCode: refusal.status), refusal.reason, headers: headers, closesConnection: true, label: refusal.label))
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
        guard let routeGuard = gateway.guards.forRoute(request.route.index) else {
            return eventLoop.makeSucceededFuture(request)
        }
        return routeGuard.authenticate(request.credential, on: eventLoop).flatMapThrowing { identity in
            var admitted = request
            admitted.credential = nil
            admitted.identity = identity.name ?? request.identity
            if let target = try routeGuard.resolveTarget(token: request.targetToken, identity: identity) {
                admitted.backend = target
            }
            return admitted
        }
    }
}

/// `wsgate_refused_total{reason, status}`: every refused handshake or connection.
enum RefusalMetrics {
    static func count(_ label: String, status: Int) {
        Counter(label: "wsgate_refused_total", dimensions: [("reason", label), ("status", String(status))]).increment()
    }
}
