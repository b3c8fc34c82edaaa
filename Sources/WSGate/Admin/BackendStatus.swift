import Foundation
import NIOCore

/// The admin listener's `GET /status`: every route of the table in force with its targets'
/// health, as JSON for dashboards and scripts (`/metrics` has the same numbers as series).
struct BackendStatus: Encodable {
    struct Route: Encodable {
        var path: String
        var host: String?
        var match: String
        var backend: String?
        var balance: String?
        var healthCheck: String?
        var targets: [BackendTarget.Snapshot]
    }

    var ready: Bool
    var routes: [Route]

    init(routing: Routing, ready: Bool, now: NIODeadline = .now()) {
        self.ready = ready
        self.routes = routing.table.routes.map { route in
            let config = route.configuration
            guard let pool = routing.pools[route.index] else {
                let backend = config.servesWebSockets ? "dynamic" : "files"
                return Route(path: config.path, host: config.host?.description, match: config.match.rawValue, backend: backend, targets: [])
            }
            let targets = pool.targets.map { $0.snapshot(at: now) }
            return Route(path: config.path, host: config.host?.description, match: config.match.rawValue, balance: config.backends.count > 1 ? config.pool.balance.description : nil,
                         healthCheck: config.pool.healthCheck?.description, targets: targets)
        }
    }

    func json() -> String {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(self) else { return "{}\n" }
        return String(decoding: data, as: UTF8.self) + "\n"
    }
}
