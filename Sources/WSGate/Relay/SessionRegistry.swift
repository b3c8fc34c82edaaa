import NIOConcurrencyHelpers
import NIOCore

/// The live sessions of a gateway, so shutdown can tell each client "going away" (1001) instead
/// of dropping its connection: after an upgrade nothing else in NIO would.
final class SessionRegistry: Sendable {
    private let sessions = NIOLockedValueBox<[ObjectIdentifier: NIOLoopBound<RelaySession>]>([:])

    func add(_ session: RelaySession) {
        let bound = NIOLoopBound(session, eventLoop: session.eventLoop)
        self.sessions.withLockedValue { $0[ObjectIdentifier(session)] = bound }
    }

    func remove(_ session: RelaySession) {
        _ = self.sessions.withLockedValue { $0.removeValue(forKey: ObjectIdentifier(session)) }
    }

    var count: Int { self.sessions.withLockedValue { $0.count } }

    /// Starts the closing handshake of every live session, each on its own event loop.
    func goAwayAll(reason: String) {
        for session in self.sessions.withLockedValue({ Array($0.values) }) {
            session.eventLoop.execute { session.value.goAway(reason: reason) }
        }
    }
}
