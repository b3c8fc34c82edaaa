import NIOConcurrencyHelpers
import NIOCore

/// Something shutdown must end politely: a relay session (close 1001 to the client) or an HTTP/2
/// connection (GOAWAY). Called on its own event loop.
protocol GoingAway: AnyObject {
    func goAway(reason: String)
}

/// The live sessions and HTTP/2 connections of a gateway, so shutdown can tell each client "going
/// away" instead of dropping its connection (after an upgrade nothing else in NIO would), and
/// operators can list sessions and end one. Sessions get an id here, unique for the process's life.
final class SessionRegistry: Sendable {
    private struct Entry: Sendable {
        var member: NIOLoopBound<GoingAway>
        /// Relay sessions only (HTTP/2 connections are not listed).
        var session: NIOLoopBound<RelaySession>?
        /// Held or shared sessions' service connections.
        var hub: NIOLoopBound<SessionHub>?
    }

    private struct State {
        var entries: [ObjectIdentifier: Entry] = [:]
        var sessionsByID: [UInt64: ObjectIdentifier] = [:]
        var lastID: UInt64 = 0
    }

    private let state = NIOLockedValueBox(State())

    func add(_ member: GoingAway, on eventLoop: EventLoop) {
        let entry = Entry(member: NIOLoopBound(member, eventLoop: eventLoop))
        self.state.withLockedValue { $0.entries[ObjectIdentifier(member)] = entry }
    }

    /// Lists a held or shared session's service connection.
    func add(hub: SessionHub, on eventLoop: EventLoop) {
        let entry = Entry(member: NIOLoopBound(hub, eventLoop: eventLoop), hub: NIOLoopBound(hub, eventLoop: eventLoop))
        self.state.withLockedValue { $0.entries[ObjectIdentifier(hub)] = entry }
    }

    /// Lists a relay session; returns its id.
    func add(session: RelaySession, on eventLoop: EventLoop) -> UInt64 {
        let entry = Entry(member: NIOLoopBound(session, eventLoop: eventLoop), session: NIOLoopBound(session, eventLoop: eventLoop))
        return self.state.withLockedValue { state in
            state.lastID += 1
            state.entries[ObjectIdentifier(session)] = entry
            state.sessionsByID[state.lastID] = ObjectIdentifier(session)
            return state.lastID
        }
    }

    func remove(_ member: GoingAway) {
        self.state.withLockedValue { state in
            state.entries.removeValue(forKey: ObjectIdentifier(member))
            if let session = member as? RelaySession { state.sessionsByID.removeValue(forKey: session.id) }
        }
    }

    /// Sessions and HTTP/2 connections still open (shutdown waits for none).
    var count: Int { self.state.withLockedValue { $0.entries.count } }

    /// Relay sessions only (what `/sessions` lists and `wsgate_sessions_active` counts).
    var sessionCount: Int { self.state.withLockedValue { $0.sessionsByID.count } }

    /// Starts the closing handshake of every live session, each on its own event loop.
    func goAwayAll(reason: String) {
        for entry in self.state.withLockedValue({ Array($0.entries.values) }) {
            entry.member.eventLoop.execute { entry.member.value.goAway(reason: reason) }
        }
    }

    /// The relay sessions grouped by event loop: whatever visits them does it in one task per loop.
    private func sessionsByLoop() -> [(EventLoop, [NIOLoopBound<RelaySession>])] {
        var byLoop: [ObjectIdentifier: (EventLoop, [NIOLoopBound<RelaySession>])] = [:]
        for session in self.state.withLockedValue({ $0.entries.values.compactMap(\.session) }) {
            byLoop[ObjectIdentifier(session.eventLoop), default: (session.eventLoop, [])].1.append(session)
        }
        return Array(byLoop.values)
    }

    /// A snapshot of every relay session, each taken on its own event loop, sorted by id.
    func snapshots(on eventLoop: EventLoop) -> EventLoopFuture<[SessionSnapshot]> {
        let perLoop = self.sessionsByLoop().map { loop, sessions in
            loop.submit { sessions.compactMap { $0.value.snapshot() } }
        }
        return EventLoopFuture.whenAllSucceed(perLoop, on: eventLoop).map { lists in
            lists.flatMap { $0 }.sorted { $0.id < $1.id }
        }
    }

    /// Every held or shared session's state, each taken on its own event loop.
    func hubSnapshots(on eventLoop: EventLoop) -> EventLoopFuture<[HubSnapshot]> {
        let hubs = self.state.withLockedValue { $0.entries.values.compactMap(\.hub) }
        let each = hubs.map { hub in hub.eventLoop.submit { hub.value.snapshot() } }
        return EventLoopFuture.whenAllSucceed(each, on: eventLoop).map { $0.sorted { ($0.route, $0.age) < ($1.route, $1.age) } }
    }

    /// Ends every session whose backend is `target` (as printed), each on its own event loop.
    func close(backend target: String, reason: GatewayCloseReason) {
        for (loop, sessions) in self.sessionsByLoop() {
            loop.execute {
                for session in sessions where session.value.backendTarget == target {
                    session.value.closeByGateway(reason)
                }
            }
        }
    }

    /// Ends session `id` on its event loop; false: no such session.
    func close(id: UInt64, code: WebSocketCloseCode?, reason: GatewayCloseReason = .admin) -> Bool {
        let session = self.state.withLockedValue { state in
            state.sessionsByID[id].flatMap { state.entries[$0]?.session }
        }
        guard let session else { return false }
        session.eventLoop.execute {
            session.value.closeByGateway(reason, code: code)
        }
        return true
    }
}
