import NIOConcurrencyHelpers

/// Targets an operator is draining (`POST /targets/drain`): no new session is sent to them — a pool
/// uses its other targets, a route with only that target answers 503 — while the sessions they
/// have get the drain's grace before the gateway closes them (1001). Shared by every routing table
/// version; a drain lasts until it is lifted (`DELETE /targets/drain`) or the process ends.
final class TargetDrains: Sendable {
    private let draining = NIOLockedValueBox<Set<String>>([])

    /// `target`: a backend URL as the gateway prints it (``BackendURL/description``).
    func start(_ target: String) -> Bool {
        self.draining.withLockedValue { $0.insert(target).inserted }
    }

    func lift(_ target: String) -> Bool {
        self.draining.withLockedValue { $0.remove(target) != nil }
    }

    func isDraining(_ target: BackendURL) -> Bool {
        // Most gateways never drain: skip formatting the URL then.
        self.draining.withLockedValue { $0.isEmpty ? false : $0.contains(target.description) }
    }

    func contains(_ target: String) -> Bool {
        self.draining.withLockedValue { $0.contains(target) }
    }

    var all: [String] { self.draining.withLockedValue { $0.sorted() } }
}
