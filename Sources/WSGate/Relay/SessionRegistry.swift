import NIOConcurrencyHelpers
import NIOCore

/// Something shutdown must end politely: a relay session (close 1001 to the client) or an HTTP/2
/// connection (GOAWAY). Called on its own event loop.
protocol GoingAway: AnyObject {
    func goAway(reason: String)
}

/// The live sessions and HTTP/2 connections of a gateway, so shutdown can tell each client "going
/// away" instead of dropping its connection: after an upgrade nothing else in NIO would.
final class SessionRegistry: Sendable {
    private let sessions = NIOLockedValueBox<[ObjectIdentifier: NIOLoopBound<GoingAway>]>([:])

    func add(_ session: GoingAway, on eventLoop: EventLoop) {
        let bound = NIOLoopBound(session, eventLoop: eventLoop)
        self.sessions.withLockedValue { $0[ObjectIdentifier(session)] = bound }
    }

    func remove(_ session: GoingAway) {
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
