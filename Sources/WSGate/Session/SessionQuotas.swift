import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// `limits.max_sessions_per_user` and `max_sessions_per_target`: how many sessions one user (or one
/// target) may hold on a route. Places are taken at admission, before any backend is dialled, so
/// two handshakes racing for the last place cannot both win; a place is held by a ``QuotaTicket``
/// that the session keeps and gives back when it ends (or that is given back when the handshake
/// fails and drops it). Shared by every routing table version: a reload does not reset the counts.
final class SessionQuotas: Sendable {
    struct Key: Hashable, Sendable {
        enum Kind: String, Sendable {
            case user
            case target
        }

        var route: String
        var kind: Kind
        var value: String
    }

    enum Decision {
        case admitted(QuotaTicket, replacing: [UInt64])
        case refused(HTTPRefusal)
    }

    private struct Holder {
        var serial: UInt64
        /// The session holding the place, once installed (only those can be replaced).
        var sessionID: UInt64?
    }

    private struct State {
        var holders: [Key: [Holder]] = [:]
        var lastSerial: UInt64 = 0
    }

    private let state = NIOLockedValueBox(State())

    /// Takes a place under `key`. At the limit, `reject` refuses (409); `replaceOldest` takes the
    /// places of the oldest installed sessions, whose ids come back for the caller to close.
    func admit(_ key: Key, limit: Int, onLimit: SessionLimitPolicy) -> Decision {
        let outcome = self.state.withLockedValue { state -> (serial: UInt64, replacing: [UInt64])? in
            var holders = state.holders[key] ?? []
            var replacing: [UInt64] = []
            if holders.count >= limit {
                guard onLimit == .replaceOldest else { return nil }
                let excess = holders.count - limit + 1
                let replaceable = holders.filter { $0.sessionID != nil }.prefix(excess)
                // Places still connecting cannot be taken: refuse rather than exceed the limit.
                guard replaceable.count == excess else { return nil }
                let serials = Set(replaceable.map(\.serial))
                replacing = replaceable.compactMap(\.sessionID)
                holders.removeAll { serials.contains($0.serial) }
            }
            state.lastSerial += 1
            holders.append(Holder(serial: state.lastSerial, sessionID: nil))
            state.holders[key] = holders
            return (state.lastSerial, replacing)
        }
        guard let outcome else {
            let setting = key.kind == .user ? "max_sessions_per_user" : "max_sessions_per_target"
            return .refused(HTTPRefusal(.conflict, "\(key.kind.rawValue) \(key.value) already has \(limit) session\(limit == 1 ? "" : "s") on \(key.route) (\(setting))",
                                        closesConnection: true, label: "session_limit"))
        }
        return .admitted(QuotaTicket(quotas: self, key: key, serial: outcome.serial), replacing: outcome.replacing)
    }

    /// Sessions holding places under `key` (for tests and the admin API).
    func count(_ key: Key) -> Int {
        self.state.withLockedValue { $0.holders[key]?.count ?? 0 }
    }

    fileprivate func attach(_ key: Key, serial: UInt64, sessionID: UInt64) {
        self.state.withLockedValue { state in
            guard let index = state.holders[key]?.firstIndex(where: { $0.serial == serial }) else { return }
            state.holders[key]?[index].sessionID = sessionID
        }
    }

    fileprivate func release(_ key: Key, serial: UInt64) {
        self.state.withLockedValue { state in
            state.holders[key]?.removeAll { $0.serial == serial }
            if state.holders[key]?.isEmpty == true { state.holders.removeValue(forKey: key) }
        }
    }
}

/// One place in a ``SessionQuotas`` count; given back once, by ``release()`` or when dropped.
final class QuotaTicket: Sendable {
    private let quotas: SessionQuotas
    private let key: SessionQuotas.Key
    private let serial: UInt64
    private let released = NIOLockedValueBox(false)

    fileprivate init(quotas: SessionQuotas, key: SessionQuotas.Key, serial: UInt64) {
        self.quotas = quotas
        self.key = key
        self.serial = serial
    }

    /// The session now holding the place (it can be replaced from now on).
    func attach(sessionID: UInt64) {
        self.quotas.attach(self.key, serial: self.serial, sessionID: sessionID)
    }

    func release() {
        guard !self.released.withLockedValue({ let was = $0; $0 = true; return was }) else { return }
        self.quotas.release(self.key, serial: self.serial)
    }

    deinit {
        self.release()
    }
}

/// What a route does with a handshake past a session limit.
public enum SessionLimitPolicy: String, Sendable, Equatable {
    /// 409 before the 101; the sessions already open go on.
    case reject
    /// The oldest session of that user (or target) closes with 1008; the new one is admitted.
    case replaceOldest = "replace_oldest"
}
