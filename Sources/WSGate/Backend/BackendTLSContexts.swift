import NIOConcurrencyHelpers
import NIOSSL

/// Client TLS contexts for `wss://` backends, one per route, made when the gateway starts so a bad
/// CA file stops startup instead of failing sessions one by one.
final class BackendTLSContexts: Sendable {
    private let contexts = NIOLockedValueBox<[Int: NIOSSLContext]>([:])

    func prepare(_ routes: RouteTable) throws {
        var made: [Int: NIOSSLContext] = [:]
        for route in routes.routes {
            // Dynamic targets may be wss:// URLs too.
            if route.configuration.targets == nil {
                guard case .webSocket(_, _, _, _, true) = route.configuration.backend else { continue }
            }
            do {
                made[route.index] = try Self.make(route.configuration.backendTLS)
            } catch {
                throw BackendTLSError(route: route.configuration.path, underlying: error)
            }
        }
        self.contexts.withLockedValue { $0 = made }
    }

    func context(forRoute index: Int) -> NIOSSLContext? {
        self.contexts.withLockedValue { $0[index] }
    }

    /// TLS 1.2+, full certificate verification against the system roots or the route's CA file;
    /// ALPN `http/1.1`, since the backend handshake is an HTTP/1.1 upgrade.
    static func make(_ settings: BackendTLS) throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        configuration.applicationProtocols = ["http/1.1"]
        if let caFile = settings.caFile {
            configuration.trustRoots = .file(caFile)
        }
        return try NIOSSLContext(configuration: configuration)
    }
}

struct BackendTLSError: Error, CustomStringConvertible {
    var route: String
    var underlying: Error
    var description: String { "route \(self.route): cannot set up backend TLS: \(self.underlying)" }
}
