import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL

/// Every pool target of the routing table in force, and their active health checks. A new table
/// (a reload) reuses the targets it names again, with their health, sessions and checks, and the
/// checks of the targets it no longer names stop.
final class TargetRegistry: Sendable {
    /// Targets are shared when everything that decides their health is the same.
    struct Key: Hashable, Sendable {
        var url: String
        var check: HealthCheckSettings?
        var passive: PassiveHealthSettings
        var tls: BackendTLS

        init(_ url: BackendURL, of route: RouteConfiguration) {
            self.url = url.description
            self.check = route.pool.healthCheck
            self.passive = route.pool.passiveHealth
            self.tls = route.backendTLS
        }
    }

    private struct Entry {
        var target: BackendTarget
        var checker: HealthChecker?
    }

    private let entries = NIOLockedValueBox<[Key: Entry]>([:])

    /// The target for `url` as `route` checks it: the one in force, or a new one (not checked
    /// until its table is applied).
    func target(_ url: BackendURL, of route: RouteConfiguration, made: inout [Key: BackendTarget]) -> BackendTarget {
        let key = Key(url, of: route)
        if let target = made[key] ?? self.entries.withLockedValue({ $0[key]?.target }) {
            made[key] = target
            return target
        }
        let target = BackendTarget(url: url, check: route.pool.healthCheck, passive: route.pool.passiveHealth)
        made[key] = target
        return target
    }

    /// Makes `routing`'s targets the ones in force: checks start for new targets, stop for the
    /// ones left behind.
    func apply(_ routing: Routing, group: EventLoopGroup, logger: Logger) {
        var wanted: [Key: (BackendTarget, NIOSSLContext?)] = [:]
        for route in routing.table.routes {
            guard let pool = routing.pools[route.index] else { continue }
            for target in pool.targets {
                wanted[Key(target.url, of: route.configuration)] = (target, routing.backendTLS[route.index])
            }
        }
        let stopping: [HealthChecker] = self.entries.withLockedValue { entries in
            var next: [Key: Entry] = [:]
            for (key, (target, tls)) in wanted {
                if let entry = entries[key], entry.target === target {
                    next[key] = entry
                } else {
                    let checker = HealthChecker(target: target, tls: tls, serverName: key.tls.serverName, logger: logger)
                    checker?.start(on: group.next())
                    next[key] = Entry(target: target, checker: checker)
                }
            }
            let stopping = entries.filter { next[$0.key] == nil }.compactMap(\.value.checker)
            entries = next
            return stopping
        }
        for checker in stopping { checker.stop() }
    }

    /// Stops every check (at shutdown).
    func stopAll() {
        let checkers = self.entries.withLockedValue { entries -> [HealthChecker] in
            defer { entries = [:] }
            return entries.values.compactMap(\.checker)
        }
        for checker in checkers { checker.stop() }
    }
}
