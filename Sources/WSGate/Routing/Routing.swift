import Logging
import NIOConcurrencyHelpers
import NIOSSL

/// One version of the routing table with everything made from it: each route's guard (auth,
/// dynamic targets) and each `wss://` route's TLS context. A reload builds a new one and swaps it
/// whole, so a handshake sees one version from routing to backend connect, and a file that fails
/// to load never leaves a half-updated table behind.
final class Routing: Sendable {
    let table: RouteTable
    let guards: [Int: RouteGuard]
    let backendTLS: [Int: NIOSSLContext]

    private init(table: RouteTable, guards: [Int: RouteGuard], backendTLS: [Int: NIOSSLContext]) {
        self.table = table
        self.guards = guards
        self.backendTLS = backendTLS
    }

    /// No routes: what a gateway answers with before it has started.
    static let empty = Routing(table: RouteTable([]), guards: [:], backendTLS: [:])

    /// Reads every file the routes name (token files, keys, CAs) now, so a bad one is a
    /// configuration error here rather than failed handshakes later.
    static func make(_ routes: [RouteConfiguration], logger: Logger, passwordChecks: PasswordChecks) async throws -> Routing {
        let table = RouteTable(routes)
        var guards: [Int: RouteGuard] = [:]
        var backendTLS: [Int: NIOSSLContext] = [:]
        for route in table.routes {
            let config = route.configuration
            if config.auth != nil || config.targets != nil {
                do {
                    guards[route.index] = try await RouteGuard.make(config, logger: logger, passwordChecks: passwordChecks)
                } catch {
                    throw ConfigurationError(key: "route \(config.path)", message: "\(error)")
                }
            }
            // Dynamic targets may be wss:// URLs too.
            if case .webSocket(_, _, _, _, true) = config.backend {} else if config.targets == nil { continue }
            do {
                backendTLS[route.index] = try config.backendTLS.makeContext()
            } catch {
                throw ConfigurationError(key: "route \(config.path)", message: "cannot set up backend TLS: \(error)")
            }
        }
        return Routing(table: table, guards: guards, backendTLS: backendTLS)
    }
}
