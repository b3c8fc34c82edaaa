import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// A route's targets and the order a session tries them in: the balancing policy over the
/// targets that are available, so a failed connect moves on to the next-best one.
final class BackendPool: Sendable {
    let targets: [BackendTarget]
    let settings: PoolSettings
    private let turn = NIOLockedValueBox(0)

    init(targets: [BackendTarget], settings: PoolSettings) {
        // A programming error, not a peer's doing: the loader refuses a route without a backend.
        precondition(!targets.isEmpty, "a pool needs a target")
        self.targets = targets
        self.settings = settings
    }

    /// The targets to try, best first, at most `connect_attempts`. Only available targets are
    /// listed; when none is, all of them are (a refused connect costs less than refusing the client
    /// while a target may have recovered).
    /// `excluding`: targets never to list (drained ones); the rest may be empty then.
    func candidates(clientAddress: SocketAddress?, head: HTTPRequestHead, at now: NIODeadline = .now(),
                    excluding excluded: (BackendTarget) -> Bool = { _ in false }) -> [BackendTarget] {
        if self.targets.count == 1 { return excluded(self.targets[0]) ? [] : self.targets }  // no copy: most routes
        let allowed = self.targets.filter { !excluded($0) }
        if allowed.count <= 1 { return allowed }
        var available = allowed.filter { $0.isAvailable(at: now) }
        if available.isEmpty { available = allowed }
        let ordered: [BackendTarget]
        switch self.settings.balance {
        case .roundRobin:
            ordered = self.rotated(available)
        case .leastConnections:
            // A rotation sorted by load, position breaking ties: equal loads still take turns.
            ordered = self.rotated(available).enumerated().map { ($0.element, $0.element.sessions, $0.offset) }
                .sorted { ($0.1, $0.2) < ($1.1, $1.2) }.map(\.0)
        case .hashClientIP:
            ordered = self.hashed(available, key: clientAddress?.ipAddress)
        case .hashHeader(let name):
            ordered = self.hashed(available, key: head.headers.first(name: name))
        case .hashQuery(let name):
            ordered = self.hashed(available, key: QueryParameters(target: head.uri).value(name))
        }
        return Array(ordered.prefix(self.settings.connectAttempts))
    }

    private func rotated(_ targets: [BackendTarget]) -> [BackendTarget] {
        let start = self.turn.withLockedValue { turn in
            defer { turn &+= 1 }
            return turn
        }
        let offset = Int(UInt(bitPattern: start) % UInt(targets.count))
        return Array(targets[offset...] + targets[..<offset])
    }

    /// Rendezvous (highest random weight) hashing: each target scores the key, highest first. A
    /// target leaving moves only its own keys, and the order doubles as the failover order.
    private func hashed(_ targets: [BackendTarget], key: String?) -> [BackendTarget] {
        guard let key, !key.isEmpty else { return self.rotated(targets) }
        let keyHash = Self.fnv1a(key)
        return targets.map { ($0, Self.mix(keyHash ^ $0.urlHash)) }.sorted { $0.1 > $1.1 }.map(\.0)
    }

    static func fnv1a(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x100_0000_01b3
        }
        return hash
    }

    /// splitmix64's finaliser: spreads the combined hash so scores do not follow the URLs' order.
    static func mix(_ value: UInt64) -> UInt64 {
        var z = value &+ 0x9e37_79b9_7f4a_7c15
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}
