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
    /// Every route with configured backends (one or several): the order its sessions try them
    /// in and their health. Routes with dynamic `targets` have none.
    let pools: [Int: BackendPool]

    private init(table: RouteTable, guards: [Int: RouteGuard], backendTLS: [Int: NIOSSLContext], pools: [Int: BackendPool]) {
        self.table = table
        self.guards = guards
        self.backendTLS = backendTLS
        self.pools = pools
    }

    /// No routes: what a gateway answers with before it has started.
    static let empty = Routing(table: RouteTable([]), guards: [:], backendTLS: [:], pools: [:])

    /// Reads every file the routes name (token files, keys, CAs) now, so a bad one is a
    /// configuration error here rather than failed handshakes later.
    /// Pool targets already in force (`targets`) are reused with their health state.
    static func make(_ routes: [RouteConfiguration], logger: Logger, passwordChecks: PasswordChecks, targets: TargetRegistry) async throws -> Routing {
        let table = RouteTable(routes)
        var guards: [Int: RouteGuard] = [:]
        var backendTLS: [Int: NIOSSLContext] = [:]
        var pools: [Int: BackendPool] = [:]
        var made: [TargetRegistry.Key: BackendTarget] = [:]
        for route in table.routes {
            let config = route.configuration
            if config.targets == nil && config.servesWebSockets {
                pools[route.index] = BackendPool(targets: config.backends.map { targets.target($0, of: config, made: &made) }, settings: config.pool)
            }
            if config.auth != nil || config.targets != nil {
                do {
                    guards[route.index] = try await RouteGuard.make(config, logger: logger, passwordChecks: passwordChecks)
                } catch {
                    throw ConfigurationError(key: "route \(config.path)", message: "\(error)")
                }
            }
            // Dynamic targets may be wss:// URLs too.
            guard config.usesBackendTLS else { continue }
            do {
                backendTLS[route.index] = try config.backendTLS.makeContext()
            } catch {
                throw ConfigurationError(key: "route \(config.path)", message: "cannot set up backend TLS: \(error)")
            }
        }
        return Routing(table: table, guards: guards, backendTLS: backendTLS, pools: pools)
    }
}
