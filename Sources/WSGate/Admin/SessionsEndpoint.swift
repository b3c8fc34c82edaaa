import Foundation
import NIOCore
import NIOHTTP1

/// `GET /sessions` and `DELETE /sessions/{id}` on the admin listener.
///
/// `GET /sessions?route=/x&user=alice&limit=100&after=ID` lists live sessions by ascending id as
/// JSON: `{"total": N, "sessions": [...], "next": ID}` — `total` counts what matched the filters,
/// `next` (present when more follow) is the `after` of the next page; `hubs` lists held and shared
/// sessions' service connections (state, members, output buffered), `held` counts those held.
/// `DELETE /sessions/ID?code=C` closes one session: the client gets `C` (default 1008), the backend
/// 1001; 404 if there is none.
enum SessionsEndpoint {
    static let defaultPageSize = 100
    static let maxPageSize = 1000

    /// nil: not a `/sessions` path.
    static func answer(method: HTTPMethod, target: String, registry: SessionRegistry, on eventLoop: EventLoop) -> EventLoopFuture<AdminResponse>? {
        let path = RouteTable.path(ofTarget: target)
        let query = QueryParameters(target: target)
        if path == "/sessions" {
            guard method == .GET else { return eventLoop.makeSucceededFuture(.error(.methodNotAllowed, "use GET to list sessions, DELETE /sessions/ID to close one")) }
            return self.list(query, registry: registry, on: eventLoop)
        }
        guard path.hasPrefix("/sessions/") else { return nil }
        guard method == .DELETE else { return eventLoop.makeSucceededFuture(.error(.methodNotAllowed, "use DELETE to close a session")) }
        guard let id = UInt64(path.dropFirst("/sessions/".count)) else {
            return eventLoop.makeSucceededFuture(.error(.badRequest, "a session id is a positive integer"))
        }
        var code: WebSocketCloseCode?
        if let text = query.value("code") {
            guard let raw = UInt16(text), Self.closableWith(WebSocketCloseCode(raw)) else {
                return eventLoop.makeSucceededFuture(.error(.badRequest, "code must be 1000, 1001, 1008, 1011 or 3000-4999"))
            }
            code = WebSocketCloseCode(raw)
        }
        guard registry.close(id: id, code: code) else {
            return eventLoop.makeSucceededFuture(.error(.notFound, "no live session \(id)"))
        }
        return eventLoop.makeSucceededFuture(AdminResponse(status: .accepted, body: "{\"id\":\(id),\"closing\":true}\n"))
    }

    /// Codes an operator may end a session with: the ones that mean "stop", and the application ranges.
    static func closableWith(_ code: WebSocketCloseCode) -> Bool {
        switch code.rawValue {
        case 1000, 1001, 1008, 1011, 3000...4999: return true
        default: return false
        }
    }

    private static func list(_ query: QueryParameters, registry: SessionRegistry, on eventLoop: EventLoop) -> EventLoopFuture<AdminResponse> {
        var limit = Self.defaultPageSize
        if let text = query.value("limit") {
            guard let value = Int(text), (1...Self.maxPageSize).contains(value) else {
                return eventLoop.makeSucceededFuture(.error(.badRequest, "limit must be 1-\(Self.maxPageSize)"))
            }
            limit = value
        }
        var after: UInt64 = 0
        if let text = query.value("after") {
            guard let value = UInt64(text) else { return eventLoop.makeSucceededFuture(.error(.badRequest, "after must be a session id")) }
            after = value
        }
        let route = query.value("route")
        let user = query.value("user")
        let (pageSize, cursor) = (limit, after)
        return registry.snapshots(on: eventLoop).and(registry.hubSnapshots(on: eventLoop)).map { all, hubs in
            let matches = { (itsRoute: String, itsUser: String?) in (route == nil || itsRoute == route) && (user == nil || itsUser == user) }
            let matching = all.filter { matches($0.route, $0.user) }
            let page = matching.lazy.filter { $0.id > cursor }.prefix(pageSize)
            let now = Date()
            var json = "{\"total\":\(matching.count),\"sessions\":["
            json += page.map { Self.json($0, now: now) }.joined(separator: ",")
            json += "]"
            if let last = page.last, matching.contains(where: { $0.id > last.id }) {
                json += ",\"next\":\(last.id)"
            }
            let shownHubs = hubs.filter { matches($0.route, $0.user) }
            json += ",\"held\":\(shownHubs.filter { $0.state == "held" }.count),\"hubs\":[" + shownHubs.map(Self.json).joined(separator: ",") + "]"
            json += "}\n"
            return AdminResponse(status: .ok, body: json)
        }
    }

    private static func json(_ session: SessionSnapshot, now: Date) -> String {
        let started = now.addingTimeInterval(-Double(session.age.nanoseconds) / 1e9)
        var fields = [
            "\"id\":\(session.id)",
            "\"route\":\(JSONString.quoted(session.route))",
            "\"user\":\(session.user.map(JSONString.quoted) ?? "null")",
            "\"client\":\(JSONString.quoted(session.client))",
            "\"backend\":\(JSONString.quoted(session.backend))",
            "\"protocol\":\(JSONString.quoted(session.clientProtocol))",
            "\"started\":\(JSONString.quoted(Self.timestamp(started)))",
        ]
        fields.append("\"duration_s\":\(Self.seconds(session.age))")
        fields.append("\"bytes_in\":\(session.bytesIn),\"bytes_out\":\(session.bytesOut)")
        fields.append("\"messages_in\":\(session.messagesIn),\"messages_out\":\(session.messagesOut)")
        fields.append("\"closing\":\(session.closing)")
        return "{" + fields.joined(separator: ",") + "}"
    }

    private static func json(_ hub: HubSnapshot) -> String {
        var fields = [
            "\"route\":\(JSONString.quoted(hub.route))",
            "\"kind\":\(JSONString.quoted(hub.kind))",
            "\"user\":\(hub.user.map(JSONString.quoted) ?? "null")",
            "\"state\":\(JSONString.quoted(hub.state))",
            "\"members\":\(hub.members)",
            "\"buffered_bytes\":\(hub.bufferedBytes),\"buffer_limit\":\(hub.bufferLimit)",
            "\"messages_out\":\(hub.messagesOut)",
            "\"duration_s\":\(Self.seconds(hub.age))",
        ]
        if let expiresIn = hub.expiresIn {
            fields.append("\"expires_in_s\":\(Self.seconds(expiresIn))")
        }
        return "{" + fields.joined(separator: ",") + "}"
    }

    /// Seconds with milliseconds, as a JSON number.
    private static func seconds(_ amount: TimeAmount) -> String {
        String(format: "%.3f", Double(amount.nanoseconds) / 1e9)
    }

    /// RFC 3339 in UTC, with milliseconds.
    private static func timestamp(_ date: Date) -> String {
        Date.ISO8601FormatStyle(includingFractionalSeconds: true).format(date)
    }
}
