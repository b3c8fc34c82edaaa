import NIOConcurrencyHelpers
import NIOCore

/// The gateway's held and shared sessions by route and id (resume id or share key), so a handshake
/// on any event loop finds the one it names; and the number held per route (`max_held_sessions`).
final class HubTable: Sendable {
    struct Key: Hashable, Sendable {
        var route: String
        var id: String
    }

    /// What a handshake naming a key gets.
    enum Claim {
        /// Nothing there: this handshake opens the session and must call ``opened(_:hub:)`` or ``failed(_:)``.
        case open
        case join(NIOLoopBound<SessionHub>)
        /// Another handshake is opening it: wait for that.
        case wait(EventLoopFuture<NIOLoopBound<SessionHub>>)
        /// It ended in a way a later attempt must hear about (for the resume window).
        case gone(String)
    }

    private enum Entry {
        case opening([EventLoopPromise<NIOLoopBound<SessionHub>>])
        case open(NIOLoopBound<SessionHub>, ObjectIdentifier)
        case gone(String, until: NIODeadline)
    }

    private struct State {
        var entries: [Key: Entry] = [:]
        var held: [String: Int] = [:]
    }

    private let state = NIOLockedValueBox(State())

    func claim(_ key: Key, on eventLoop: EventLoop) -> Claim {
        self.state.withLockedValue { state in
            switch state.entries[key] {
            case nil:
                state.entries[key] = .opening([])
                return .open
            case .opening(var waiters)?:
                let promise = eventLoop.makePromise(of: NIOLoopBound<SessionHub>.self)
                waiters.append(promise)
                state.entries[key] = .opening(waiters)
                return .wait(promise.futureResult)
            case .open(let hub, _)?:
                return .join(hub)
            case .gone(let reason, let until)?:
                if NIODeadline.now() < until { return .gone(reason) }
                state.entries[key] = .opening([])
                return .open
            }
        }
    }

    /// The session a ``Claim/open`` claim opened: those waiting join it.
    func opened(_ key: Key, hub: NIOLoopBound<SessionHub>, id: ObjectIdentifier) {
        let waiters = self.state.withLockedValue { state -> [EventLoopPromise<NIOLoopBound<SessionHub>>] in
            guard case .opening(let waiters)? = state.entries[key] else { return [] }
            state.entries[key] = .open(hub, id)
            return waiters
        }
        for waiter in waiters { waiter.succeed(hub) }
    }

    /// A ``Claim/open`` claim gave up (its backend could not be reached, its client left).
    func failed(_ key: Key, _ error: Error) {
        let waiters = self.state.withLockedValue { state -> [EventLoopPromise<NIOLoopBound<SessionHub>>] in
            guard case .opening(let waiters)? = state.entries[key] else { return [] }
            state.entries.removeValue(forKey: key)
            return waiters
        }
        for waiter in waiters { waiter.fail(error) }
    }

    /// Hub `hub` ended; with a `tombstone`, attempts within `window` are told it.
    func remove(_ key: Key, hub: ObjectIdentifier, tombstone: String?, for window: TimeAmount) {
        self.state.withLockedValue { state in
            guard case .open(_, let current)? = state.entries[key], current == hub else { return }
            if let tombstone, window > .zero {
                let now = NIODeadline.now()
                // Old tombstones go as new ones come: the table never outgrows a window's worth.
                state.entries = state.entries.filter { if case .gone(_, let until) = $0.value { return until > now } else { return true } }
                state.entries[key] = .gone(tombstone, until: now + window)
            } else {
                state.entries.removeValue(forKey: key)
            }
        }
    }

    /// A place among the route's held sessions; false at `limit`.
    func takeHeld(route: String, limit: Int) -> Bool {
        self.state.withLockedValue { state in
            guard state.held[route, default: 0] < limit else { return false }
            state.held[route, default: 0] += 1
            return true
        }
    }

    func releaseHeld(route: String) {
        self.state.withLockedValue { state in
            state.held[route] = max(0, state.held[route, default: 0] - 1)
        }
    }
}
