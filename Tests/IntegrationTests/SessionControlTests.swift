import ChildProcesses
import DemoBackends
import Foundation
import JWTKit
import NIOCore
import NIOPosix
import Testing
@testable import WSGate

/// How a client saw its session end: the close code and reason, and when (wall clock, so runs in
/// other processes compare).
struct ObservedClose: Decodable {
    var status: String?
    var code: Int?
    var reason: String
    var closedAt: Double?
    /// From the 200 (HTTP/2 script) to the close.
    var seconds: Double?

    enum CodingKeys: String, CodingKey {
        case status, code, reason, seconds
        case closedAt = "closed_at"
    }

    /// One RFC 8441 stream that waits for the gateway to close it (Tests/peers/h2_wait_close.py).
    static func overHTTP2(port: Int, path: String, headers: [String] = [], timeout: Int = 20) async throws -> ObservedClose {
        var arguments = [Peers.script("h2_wait_close.py"), "127.0.0.1", String(port), path, "--timeout", String(timeout)]
        for header in headers { arguments += ["--header", header] }
        let run = try await Peers.run(try Peers.python, arguments, timeout: TimeInterval(timeout + 20))
        return try Peers.lastJSON(ObservedClose.self, in: run, from: "h2_wait_close.py")
    }

    /// One HTTP/1.1 WebSocket (Python `websockets`, Tests/peers/ws_wait_close.py) that waits for the
    /// gateway to close it; `seconds` counts from before its connect.
    static func overHTTP1(url: String, timeout: Int = 20) async throws -> ObservedClose {
        let run = try await Peers.run(try Peers.python, [Peers.script("ws_wait_close.py"), url, String(timeout)], timeout: TimeInterval(timeout + 20))
        return try Peers.lastJSON(ObservedClose.self, in: run, from: "ws_wait_close.py")
    }

    /// Waits on an open HTTP/1.1 WebSocket (echoed data frames skipped) for the gateway's close.
    static func overHTTP1(_ client: TestClient, timeout: TimeAmount = .seconds(20)) async throws -> ObservedClose {
        while true {
            let frame = try await client.readFrame(timeout: timeout)
            guard frame.opcode == 8 else { continue }
            let closedAt = Date().timeIntervalSince1970
            try? await client.sendClose(frame.closeCode ?? 1000)
            return ObservedClose(status: "101", code: frame.closeCode.map(Int.init), reason: String(decoding: frame.payload.dropFirst(2), as: UTF8.self), closedAt: closedAt, seconds: nil)
        }
    }
}

/// Sessions that end on the gateway's own schedule — `max_session_duration`, a JWT's `exp`, a token
/// taken out of its file — on both fronts, at the time promised and with the promised code.
@Suite(.timeLimit(.minutes(3))) struct SessionDeadlineTests {
    /// 2 s, whatever the session is doing. Timed by Python clients in processes of their own (this
    /// process can stall for seconds with both cores busy beside the suite): from before the connect
    /// over HTTP/1.1, from the 200 over HTTP/2. A TCP session that sends in the middle ends on time too.
    @Test func maxSessionDurationClosesBothFrontsWith1001OnTime() async throws {
        let fixture = try await GatewayFixture.start { ws, tcp in
            var toWebSocket = SecurityTests.wsRoute("/ws", ws)
            toWebSocket.limits.maxSessionDuration = .seconds(2)
            var toTCP = RouteConfiguration(path: "/tcp", backend: .tcp(host: "127.0.0.1", port: tcp))
            toTCP.limits.maxSessionDuration = .seconds(2)
            return [toWebSocket, toTCP]
        }
        defer { Task { await fixture.stop() } }
        async let overHTTP2 = ObservedClose.overHTTP2(port: fixture.port, path: "/ws")
        async let overHTTP1 = ObservedClose.overHTTP1(url: "ws://127.0.0.1:\(fixture.port)/ws")

        let beforeConnect = Date().timeIntervalSince1970
        let (client, _) = try await fixture.client("/tcp")
        try await Task.sleep(nanoseconds: 1_000_000_000)
        // A stall of this process past the 2 s (seen with both cores busy) lands this after the
        // close: the send then fails, and the close frame is still read below.
        try? await client.sendFrame(2, [1, 2, 3])
        let tcpClose = try await ObservedClose.overHTTP1(client)
        await client.close()
        #expect(tcpClose.code == 1001 && tcpClose.reason == "maximum session duration reached", "\(tcpClose)")
        // Not early; how late is the Python clients' to say (this process saw the close over 5 s
        // late in a hogged run, its own stall, not the gateway's).
        let tcpLasted = (tcpClose.closedAt ?? 0) - beforeConnect
        #expect(tcpLasted > 1.95, "/tcp lasted \(tcpLasted) s")

        let http1 = try await overHTTP1
        #expect(http1.code == 1001 && http1.reason == "maximum session duration reached", "\(http1)")
        #expect((http1.seconds ?? 0) >= 1.95 && (http1.seconds ?? 0) < 2.5, "HTTP/1.1 lasted \(http1.seconds ?? -1) s")
        let http2 = try await overHTTP2
        print("max_session_duration 2s: closed after \(http1.seconds ?? -1) s (HTTP/1.1, from before the connect), \(http2.seconds ?? -1) s (h2, from the 200)")
        #expect(http2.status == "200" && http2.code == 1001, "\(http2)")
        #expect((http2.seconds ?? 0) >= 1.9 && (http2.seconds ?? 0) < 2.5, "h2 lasted \(http2.seconds ?? -1) s from its 200")
    }

    /// A JWT whose `exp` is 20 s away: the session ends with 1008 at `exp` plus the leeway, within a
    /// second, on both fronts. (3 s, then 8 s, were too short: under the whole suite with both cores
    /// busy beside it a Python client started after its token had expired, and got 401.)
    @Test func aJWTSessionEndsWhenItsTokenExpires() async throws {
        let hs256 = try await SecurityTests.hs256("e")
        let signer = hs256.signer
        var settings = hs256.settings
        settings.leeway = .seconds(1)
        let fixture = try await GatewayFixture.start { [settings] ws, _ in
            var route = SecurityTests.wsRoute("/ws", ws)
            route.auth = AuthSettings(method: .jwt(settings))
            return [route]
        }
        defer { Task { await fixture.stop() } }
        let exp = (Date().timeIntervalSince1970 + 20).rounded(.down)
        let token = try await signer.sign(SecurityTests.TestClaims(sub: "ann", exp: ExpirationClaim(value: Date(timeIntervalSince1970: exp))))
        let due = exp + 1  // the leeway
        async let overHTTP2 = ObservedClose.overHTTP2(port: fixture.port, path: "/ws", headers: ["authorization:Bearer \(token)"], timeout: 60)
        async let overHTTP1 = ObservedClose.overHTTP1(url: "ws://127.0.0.1:\(fixture.port)/ws?token=\(token)", timeout: 60)
        for (front, observed) in [("http/1.1", try await overHTTP1), ("h2", try await overHTTP2)] {
            #expect(observed.code == 1008, "\(front): \(observed)")
            #expect(observed.reason == "credentials expired", "\(front): \(observed)")
            let late = (observed.closedAt ?? 0) - due
            print("JWT exp: \(front) closed \(Int((late * 1000).rounded())) ms after exp + leeway")
            #expect(late > -0.1 && late < 1, "\(front): closed \(late) s after exp + leeway")
        }
    }

    /// Taking a token out of the token file ends the sessions it opened (and only those) within the
    /// file's watch interval (1 s) plus a sweep.
    @Test func removingATokenFromItsFileEndsItsSessions() async throws {
        let tokens = try SecurityTests.file("alpha\nbeta\ngamma\n")
        let fixture = try await GatewayFixture.start { ws, _ in
            var route = SecurityTests.wsRoute("/ws", ws)
            route.auth = AuthSettings(method: .bearerTokens(file: tokens))
            return [route]
        }
        defer { Task { await fixture.stop() } }
        // The waiters' timeouts cover the whole test: beta's is still waiting while alpha's part runs,
        // which a stall of this process (both cores busy) has stretched past 20 s.
        async let alphaOverHTTP1 = ObservedClose.overHTTP1(url: "ws://127.0.0.1:\(fixture.port)/ws?token=alpha", timeout: 90)
        let (gamma, _) = try await fixture.client("/ws", headers: ["Authorization: Bearer gamma"])
        async let betaOverHTTP2 = ObservedClose.overHTTP2(port: fixture.port, path: "/ws", headers: ["authorization:Bearer beta"], timeout: 90)
        // The stream is open once the gateway counts three sessions.
        let opened = NIODeadline.now() + .seconds(15)
        while fixture.gateway.relaySessions < 3 && NIODeadline.now() < opened { try await Task.sleep(nanoseconds: 20_000_000) }
        #expect(fixture.gateway.relaySessions == 3)

        try "beta\ngamma\n".write(toFile: tokens, atomically: true, encoding: .utf8)
        let alphaRemoved = Date().timeIntervalSince1970
        let alphaClose = try await alphaOverHTTP1
        #expect(alphaClose.code == 1008 && alphaClose.reason == "credentials revoked", "\(alphaClose)")
        print("token removed: its session closed \(Int((((alphaClose.closedAt ?? 0) - alphaRemoved) * 1000).rounded())) ms later")
        #expect((alphaClose.closedAt ?? 0) - alphaRemoved < 2.5, "closed \((alphaClose.closedAt ?? 0) - alphaRemoved) s after the removal")
        // The others' sessions go on.
        try await gamma.sendFrame(1, Array("gamma".utf8))
        #expect(try await gamma.readMessage().text == "gamma")

        try "gamma\n".write(toFile: tokens, atomically: true, encoding: .utf8)
        let betaRemoved = Date().timeIntervalSince1970
        let betaClose = try await betaOverHTTP2
        #expect(betaClose.code == 1008 && betaClose.reason == "credentials revoked", "\(betaClose)")
        #expect((betaClose.closedAt ?? 0) - betaRemoved < 2.5, "h2 closed \((betaClose.closedAt ?? 0) - betaRemoved) s after the removal")
        try await gamma.sendFrame(1, Array("still".utf8))
        #expect(try await gamma.readMessage().text == "still")
        await gamma.close()
    }
}

/// The admin session API of a real `wsgate` process: list, page, filter, end one session; the
/// listener's token file.
@Suite(.timeLimit(.minutes(3))) struct AdminSessionTests {
    struct Listing: Decodable {
        struct Session: Decodable {
            var id: UInt64
            var route: String
            var user: String?
            var client: String
            var backend: String
            var `protocol`: String
            var started: String
            var bytes_in: Int
            var messages_in: Int
        }
        var total: Int
        var sessions: [Session]
        var next: UInt64?
    }

    static func list(_ port: Int, _ query: String = "", group: EventLoopGroup) async throws -> Listing {
        let (status, body) = try await AdminTests.request(port, "GET", "/sessions\(query)", token: "ops-token", group: group)
        #expect(status == 200, "\(body)")
        return try JSONDecoder().decode(Listing.self, from: Data(body.utf8))
    }

    @Test func operatorsListPageAndEndSessions() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { group.shutdownGracefully { _ in } }
        let echo = try await TCPServices.startEcho(host: "127.0.0.1", port: 0, group: group)
        defer { echo.close(promise: nil) }
        let wsEcho = try await WebSocketEchoServer.start(host: "127.0.0.1", port: 0, group: group)
        defer { wsEcho.close(promise: nil) }
        let echoPort = echo.localAddress!.port!
        let tokens = Scratch.path("wsgate-admin-tokens")
        try "ops-token\n".write(to: tokens, atomically: true, encoding: .utf8)
        let config = Scratch.path("wsgate-admin-sessions", suffix: ".yaml")
        try """
            admin: {address: "127.0.0.1:0", token_file: "\(tokens.path)"}
            listeners: [{address: "127.0.0.1:0"}]
            routes:
              - {path: /tcp, backend: "tcp://127.0.0.1:\(echoPort)"}
              - {path: /ws, backend: "ws://127.0.0.1:\(wsEcho.localAddress!.port!)/"}
            """.write(to: config, atomically: true, encoding: .utf8)
        let gateway = try await GatewayProcess(arguments: ["--config", config.path, "--log-level", "info", "--log-format", "json"])
        defer { gateway.stop() }
        try await gateway.waitUntilListening()
        let admin = try await gateway.adminPort()

        #expect(try await AdminTests.request(admin, "GET", "/sessions", token: nil, group: group).0 == 401)
        #expect(try await AdminTests.request(admin, "GET", "/metrics", token: "wrong", group: group).0 == 401)
        #expect(try await AdminTests.request(admin, "GET", "/healthz", token: nil, group: group).0 == 200, "probes need no token")

        let (toTCP, _) = try await TestClient.webSocket(port: gateway.port, path: "/tcp", group: group)
        try await toTCP.sendFrame(2, [1, 2, 3, 4])
        #expect(try await toTCP.readMessage().payload == [1, 2, 3, 4])
        let (toWebSocket, _) = try await TestClient.webSocket(port: gateway.port, path: "/ws", group: group)
        async let overHTTP2 = ObservedClose.overHTTP2(port: gateway.port, path: "/ws")

        var listing = try await Self.list(admin, group: group)
        let deadline = NIODeadline.now() + .seconds(15)
        while listing.total < 3 && NIODeadline.now() < deadline {
            try await Task.sleep(nanoseconds: 50_000_000)
            listing = try await Self.list(admin, group: group)
        }
        #expect(listing.total == 3)
        #expect(listing.sessions.map(\.id) == listing.sessions.map(\.id).sorted())
        #expect(Set(listing.sessions.map(\.protocol)) == ["http/1.1", "h2"])
        let tcpSession = try #require(listing.sessions.first { $0.route == "/tcp" })
        #expect(tcpSession.bytes_in == 4 && tcpSession.messages_in == 1)
        #expect(tcpSession.backend == "tcp://127.0.0.1:\(echoPort)")
        #expect(tcpSession.client.hasPrefix("127.0.0.1:"))
        #expect(tcpSession.started.hasSuffix("Z"))
        let h2Session = try #require(listing.sessions.first { $0.protocol == "h2" })

        // The listing agrees with the gauge.
        let metrics = AdminTests.samples(try await AdminTests.request(admin, "GET", "/metrics", token: "ops-token", group: group).1)
        #expect(metrics.filter { $0.key.hasPrefix("wsgate_sessions_active{") }.values.reduce(0, +) == 3)

        // Pages and filters.
        let first = try await Self.list(admin, "?limit=2", group: group)
        #expect(first.sessions.count == 2 && first.total == 3)
        let next = try #require(first.next)
        let second = try await Self.list(admin, "?limit=2&after=\(next)", group: group)
        #expect(second.sessions.count == 1 && second.next == nil)
        #expect(try await Self.list(admin, "?route=/tcp", group: group).total == 1)
        #expect(try await AdminTests.request(admin, "GET", "/sessions?limit=0", token: "ops-token", group: group).0 == 400)

        // Ending one session: the client gets the chosen code, the service its connection closed.
        #expect(try await AdminTests.request(admin, "DELETE", "/sessions/\(tcpSession.id)?code=1005", token: "ops-token", group: group).0 == 400)
        #expect(try await AdminTests.request(admin, "DELETE", "/sessions/\(tcpSession.id)", token: nil, group: group).0 == 401)
        let asked = NIODeadline.now()
        #expect(try await AdminTests.request(admin, "DELETE", "/sessions/\(tcpSession.id)?code=4000", token: "ops-token", group: group).0 == 202)
        let tcpClose = try await ObservedClose.overHTTP1(toTCP)
        #expect(tcpClose.code == 4000, "\(tcpClose)")
        while !GatewayProcess.establishedLoopback(toPort: echoPort).isEmpty && NIODeadline.now() - asked < .seconds(10) {
            try await Task.sleep(nanoseconds: 5_000_000)
        }
        #expect(GatewayProcess.establishedLoopback(toPort: echoPort).isEmpty, "the service's connection is closed")
        // Timed by the gateway's own log (this process can stall under load): from the DELETE
        // request to both legs being told to close, on the session's own event loop (1 ms, debug
        // build, inside the whole suite).
        let lines = Self.jsonLines(gateway.log)
        let requested = lines.first { $0["message"] as? String == "admin request" && ($0["target"] as? String)?.hasSuffix("code=4000") == true }
        let closing = lines.first { $0["message"] as? String == "closing session: closed by an operator" && $0["route"] as? String == "/tcp" }
        if let requested, let closing, let from = Self.time(requested), let to = Self.time(closing) {
            print("admin DELETE: both legs told to close \(Int(((to - from) * 1000).rounded())) ms after the request (gateway log)")
            #expect(to - from < 0.1, "DELETE to close took \(to - from) s in the gateway")
        } else {
            Issue.record("no admin request or closing session line: \(gateway.log.suffix(2000))")
        }
        await toTCP.close()
        #expect(try await AdminTests.request(admin, "DELETE", "/sessions/\(tcpSession.id)", token: "ops-token", group: group).0 == 404)

        #expect(try await AdminTests.request(admin, "DELETE", "/sessions/\(h2Session.id)", token: "ops-token", group: group).0 == 202)
        let h2Close = try await overHTTP2
        #expect(h2Close.code == 1008 && h2Close.reason == "closed by an operator", "\(h2Close)")

        var remaining = try await Self.list(admin, group: group)
        while remaining.total > 1 && NIODeadline.now() - asked < .seconds(10) {
            try await Task.sleep(nanoseconds: 20_000_000)
            remaining = try await Self.list(admin, group: group)
        }
        #expect(remaining.sessions.map(\.route) == ["/ws"], "\(remaining)")
        let closed = AdminTests.samples(try await AdminTests.request(admin, "GET", "/metrics", token: "ops-token", group: group).1)
        #expect(closed["wsgate_sessions_closed_total{route=\"/tcp\",reason=\"admin\"}"] == 1, "\(closed.filter { $0.key.hasPrefix("wsgate_sessions_closed") })")
        #expect(closed["wsgate_sessions_closed_total{route=\"/ws\",reason=\"admin\"}"] == 1)
        await toWebSocket.close()
        let ended = Self.jsonLines(gateway.log).filter { $0["message"] as? String == "session ended" && $0["closed_by"] as? String == "admin" }
        #expect(ended.count == 2, "\(gateway.log)")
    }

    static func jsonLines(_ log: String) -> [[String: Any]] {
        log.split(separator: "\n").compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
        }
    }

    /// A JSON log line's `time` (ISO 8601 with milliseconds) as epoch seconds.
    static func time(_ line: [String: Any]) -> Double? {
        guard let text = line["time"] as? String else { return nil }
        return try? Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true).year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted)).timeIntervalSince1970
    }
}

/// Who the client is, told to WebSocket backends in headers the client cannot forge, on both fronts.
@Suite(.timeLimit(.minutes(3))) struct BackendIdentityTests {
    struct Claims: JWTPayload {
        var sub: SubjectClaim
        var exp: ExpirationClaim
        var email: String
        var level: Int
        func verify(using algorithm: some JWTAlgorithm) async throws {}
    }

    static func headerLines(_ greeting: String) -> [String] {
        greeting.split(separator: "\n").map(String.init)
    }

    @Test func backendsSeeTheUserAndChosenClaimsAndNeverAClientsCopy() async throws {
        let (settings, signer) = try await SecurityTests.hs256("i")
        let fixture = try await GatewayFixture.start { ws, _ in
            var withAuth = SecurityTests.wsRoute("/ws", ws)
            withAuth.auth = AuthSettings(method: .jwt(settings))
            withAuth.backendIdentity = BackendIdentity(claimHeaders: [.init(claim: "email", header: "X-Email"), .init(claim: "level", header: "X-Level")])
            var anonymous = SecurityTests.wsRoute("/open", ws)
            anonymous.backendIdentity = BackendIdentity()
            return [withAuth, anonymous]
        }
        defer { Task { await fixture.stop() } }
        let token = try await signer.sign(Claims(sub: "alice", exp: ExpirationClaim(value: Date().addingTimeInterval(300)), email: "alice@example.com", level: 3))
        let forged = ["X-WSGate-User: mallory", "x-email: mallory@evil.example", "X-Other: kept"]

        let (client, _) = try await fixture.client("/ws/inspect?token=\(token)", headers: forged)
        let lines = Self.headerLines(try await client.readMessage().text)
        await client.close()
        #expect(lines.filter { $0.lowercased().hasPrefix("x-wsgate-user:") } == ["X-WSGate-User: alice"], "\(lines)")
        #expect(lines.filter { $0.lowercased().hasPrefix("x-email:") } == ["X-Email: alice@example.com"], "\(lines)")
        #expect(lines.contains("X-Level: 3") && lines.contains("X-Other: kept"), "\(lines)")

        // No user on an open route: the client's copy is still removed.
        let (open, _) = try await fixture.client("/open/inspect", headers: forged)
        let openLines = Self.headerLines(try await open.readMessage().text)
        await open.close()
        #expect(!openLines.contains { $0.lowercased().hasPrefix("x-wsgate-user:") }, "\(openLines)")

        // HTTP/2: the first message the script reads is the backend's greeting.
        let run = try await Peers.run(try Peers.python, [Peers.script("h2_websocket.py"), "127.0.0.1", String(fixture.port),
                                                         "--header", "authorization:Bearer \(token)", "--header", "x-wsgate-user:mallory", "/ws/inspect"])
        let greeting = streamResults(run.output)["/ws/inspect"]?.echo ?? ""
        #expect(Self.headerLines(greeting).filter { $0.lowercased().hasPrefix("x-wsgate-user:") } == ["X-WSGate-User: alice"], "\(run.output)")
    }
}

/// `max_sessions_per_user` and `max_sessions_per_target`, over real sockets on both fronts.
@Suite(.timeLimit(.minutes(3))) struct SessionLimitTests {
    /// Retries until `path` admits again (a place is given back when its session has fully ended).
    static func admitsAgain(_ fixture: GatewayFixture, _ path: String, headers: [String] = []) async throws -> (TestClient, [String: String]) {
        let deadline = NIODeadline.now() + .seconds(10)
        while true {
            do {
                return try await fixture.client(path, headers: headers)
            } catch where NIODeadline.now() < deadline {
                try await Task.sleep(nanoseconds: 50_000_000)
            }
        }
    }

    @Test func oneSessionPerUserAndPerTarget() async throws {
        let tokens = try SecurityTests.file("alpha\nbeta\n")
        let fixture = try await GatewayFixture.start { ws, tcp in
            var one = SecurityTests.wsRoute("/one", ws)
            one.auth = AuthSettings(method: .bearerTokens(file: tokens))
            one.limits.maxSessionsPerUser = 1
            var replace = SecurityTests.wsRoute("/replace", ws)
            replace.auth = AuthSettings(method: .bearerTokens(file: tokens))
            replace.limits.maxSessionsPerUser = 1
            replace.limits.onLimit = .replaceOldest
            var console = RouteConfiguration(path: "/console", backend: .tcp(host: "127.0.0.1", port: tcp))
            console.limits.maxSessionsPerTarget = 1
            return [one, replace, console]
        }
        defer { Task { await fixture.stop() } }

        // reject: a second session of the same user is 409 on both fronts; another user is not limited.
        let (alpha, _) = try await fixture.client("/one?token=alpha")
        #expect(try await SecurityTests.status(fixture, "/one?token=alpha") == 409)
        let run = try await Peers.run(try Peers.python, [Peers.script("h2_websocket.py"), "127.0.0.1", String(fixture.port), "--header", "authorization:Bearer alpha", "/one"])
        #expect(streamResults(run.output)["/one"]?.status == "409", "\(run.output)")
        let (beta, _) = try await fixture.client("/one?token=beta")
        try await alpha.sendClose(1000)
        _ = try await alpha.readFrame()
        await alpha.close()
        let (alphaAgain, _) = try await Self.admitsAgain(fixture, "/one?token=alpha")
        for client in [beta, alphaAgain] { await client.close() }

        // replace_oldest: the newer session is admitted and the older one closes with 1008.
        let (older, _) = try await fixture.client("/replace?token=alpha")
        let (newer, _) = try await fixture.client("/replace?token=alpha")
        let close = try await ObservedClose.overHTTP1(older)
        #expect(close.code == 1008 && close.reason == "replaced by a newer session", "\(close)")
        try await newer.sendFrame(1, Array("still mine".utf8))
        #expect(try await newer.readMessage().text == "still mine")
        for client in [older, newer] { await client.close() }

        // One session per console (target), whoever asks.
        let (first, _) = try await fixture.client("/console")
        #expect(try await SecurityTests.status(fixture, "/console") == 409)
        await first.close()
        let (next, _) = try await Self.admitsAgain(fixture, "/console")
        await next.close()
    }
}

/// `POST /targets/drain`: a drained target gets no new session (a pool uses the others, a lone
/// target answers 503), and its live sessions close with 1001 once the grace has passed.
@Suite(.timeLimit(.minutes(3))) struct TargetDrainTests {
    @Test func aDrainedTargetTakesNoNewSessionsAndLetsItsSessionsGoAfterTheGrace() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { group.shutdownGracefully { _ in } }
        let a = try await PoolTests.service("A", group: group)
        let b = try await PoolTests.service("B", group: group)
        let c = try await PoolTests.service("C", group: group)
        defer { for service in [a, b, c] { service.close(promise: nil) } }
        let url = { (service: Channel) in "tcp://127.0.0.1:\(service.localAddress!.port!)" }
        let (gateway, admin) = try await PoolTests.start("drain", """
              - {path: /pool, backends: ["\(url(a))", "\(url(b))"]}
              - {path: /one, backend: "\(url(c))"}
            """)
        defer { gateway.stop() }
        let request = { (method: String, path: String) in try await AdminTests.request(admin, method, path, token: nil, group: group) }

        let (live, _) = try await TestClient.webSocket(port: gateway.port, path: "/pool", group: group)
        let liveName = try await live.readMessage().text
        let (drained, other) = liveName == "A" ? (url(a), "B") : (url(b), "A")

        let beforeDrain = Date().timeIntervalSince1970
        #expect(try await request("POST", "/targets/drain?target=\(drained)&grace=1").0 == 202)
        #expect(try await request("GET", "/targets/drain").1.contains(drained))
        for _ in 0..<4 {
            #expect(try await PoolTests.greeting(port: gateway.port, path: "/pool", group: group) == other)
        }
        let close = try await ObservedClose.overHTTP1(live)
        await live.close()
        #expect(close.code == 1001 && close.reason == "backend target drained", "\(close)")
        #expect((close.closedAt ?? 0) - beforeDrain >= 1, "closed before the grace")

        // A route whose only target is drained answers 503 until the drain is lifted.
        #expect(try await request("POST", "/targets/drain?target=127.0.0.1:\(c.localAddress!.port!)").0 == 202)
        #expect(try await SessionLimitTests.status(gateway: gateway, "/one", group: group) == 503)
        #expect(try await request("DELETE", "/targets/drain?target=\(url(c))").0 == 200)
        #expect(try await PoolTests.greeting(port: gateway.port, path: "/one", group: group) == "C")
        #expect(try await request("POST", "/targets/drain?target=nonsense://x").0 == 400)
        #expect(try await request("DELETE", "/targets/drain?target=\(url(c))").0 == 404)
    }
}

extension SessionLimitTests {
    static func status(gateway: GatewayProcess, _ path: String, group: EventLoopGroup) async throws -> Int {
        let client = try await TestClient.connect(port: gateway.port, group: group)
        try await client.send(TestClient.handshake(path: path))
        let status = try await client.readHead().0
        await client.close()
        return status
    }
}

/// `auth.http` against a stub service, over real sockets on both fronts. Three minutes, as for the
/// other suites here: with both cores hogged beside the suite this one took 47 s to reach its
/// eighth step (everything starts at once), and one minute cut it off.
@Suite(.timeLimit(.minutes(3))) struct AuthCalloutTests {
    @Test func theServiceAdmitsNamesTargetsAndRefusesAndFailuresFailClosed() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { group.shutdownGracefully { _ in } }
        let stub = try await StubAuthService.start(group: group)
        defer { stub.stop() }
        let fixture = try await GatewayFixture.start { ws, tcp in
            var settings = HTTPAuthSettings(url: "http://127.0.0.1:\(stub.port)/check")
            // The stub answers from this process, which can stall for seconds while the other suites
            // run: a 1 s timeout turned its answers into 503s. Five still shows a hung one given up on.
            settings.timeout = .seconds(5)
            settings.cache = .seconds(60)
            var ws = SecurityTests.wsRoute("/ws", ws)
            ws.auth = AuthSettings(method: .http(settings))
            ws.backendIdentity = BackendIdentity()
            var targets = DynamicTargets()
            targets.fromJWT = true
            targets.allowed = [TargetPattern(parsing: "127.0.0.1:\(tcp)")!]
            var vnc = RouteConfiguration(path: "/vnc", backend: .dynamic)
            vnc.auth = AuthSettings(method: .http(settings))
            vnc.targets = targets
            return [ws, vnc]
        }
        defer { Task { await fixture.stop() } }
        stub.target.withLockedValue { $0 = "127.0.0.1:\(fixture.tcpEchoPort)" }
        let bearer = { (token: String) in ["Authorization: Bearer \(token)"] }

        // Admitted, the user passed on; the service saw the request's URI and client.
        let (alice, _) = try await fixture.client("/ws/inspect?x=1", headers: bearer("alice"))
        let greeting = try await alice.readMessage().text
        await alice.close()
        #expect(greeting.contains("X-WSGate-User: alice"), "\(greeting)")
        let seen = stub.lastHeaders.withLockedValue { $0 }
        #expect(seen.first(name: "x-forwarded-uri") == "/ws/inspect?x=1" && seen.first(name: "x-forwarded-for") == "127.0.0.1", "\(seen)")
        // A cache hit asks nothing.
        let (again, _) = try await fixture.client("/ws", headers: bearer("alice"))
        await again.close()
        #expect(stub.count("alice") == 1)

        // A JSON answer: its target (inside the allow list), its headers, its user.
        let (bob, _) = try await fixture.client("/vnc", headers: bearer("json-1"))
        try await bob.sendFrame(2, [4, 2])
        #expect(try await bob.readMessage().payload == [4, 2])
        await bob.close()
        let (tenant, _) = try await fixture.client("/ws/inspect", headers: bearer("json-2"))
        let tenantGreeting = try await tenant.readMessage().text
        await tenant.close()
        #expect(tenantGreeting.contains("X-Tenant: t1") && tenantGreeting.contains("X-WSGate-User: bob"), "\(tenantGreeting)")
        #expect(try await SecurityTests.status(fixture, "/vnc", headers: bearer("outside")) == 403)

        // Refusals pass through with the service's body; failures are 503.
        let denied = try await fixture.raw()
        try await denied.send(TestClient.handshake(path: "/ws", extra: bearer("denied")))
        let (status, headers, body) = try await denied.readResponse()
        await denied.close()
        #expect(status == 401 && body == "go away" && headers["www-authenticate"] == "Bearer realm=\"stub\"", "\(status) \(headers) \(body)")
        #expect(try await SecurityTests.status(fixture, "/ws", headers: bearer("forbidden")) == 403)
        #expect(try await SecurityTests.status(fixture, "/ws", headers: bearer("broken")) == 503)
        // A redirect (to a login page) is not followed: fail closed.
        #expect(try await SecurityTests.status(fixture, "/ws", headers: bearer("redirect")) == 503)
        #expect(stub.count("redirect") == 1)
        let started = NIODeadline.now()
        let hung = try await fixture.raw()
        try await hung.send(TestClient.handshake(path: "/ws", extra: bearer("hang")))
        #expect(try await hung.readHead(timeout: .seconds(60)).0 == 503)
        await hung.close()
        // Given up on after its 5 s timeout, not waited on: the margin is for this process's stalls.
        #expect(NIODeadline.now() - started < .seconds(30), "a hung service is given up on after its timeout")

        // HTTP/2 asks the same service.
        let ok = try await Peers.run(try Peers.python, [Peers.script("h2_websocket.py"), "127.0.0.1", String(fixture.port), "--header", "authorization:Bearer json-3", "/ws"])
        #expect(streamResults(ok.output)["/ws"]?.echo == "hello /ws", "\(ok.output)")
        let refused = try await Peers.run(try Peers.python, [Peers.script("h2_websocket.py"), "127.0.0.1", String(fixture.port), "--header", "authorization:Bearer denied", "/ws"])
        #expect(streamResults(refused.output)["/ws"]?.status == "401", "\(refused.output)")
    }

    /// The README's example service (examples/auth_service.py) works as documented.
    @Test func theExampleServiceAdmitsItsUsers() async throws {
        let log = Scratch.path("wsgate-auth-example", suffix: ".log")
        let example = Peers.packageRoot.appendingPathComponent("examples/auth_service.py").path
        let process = try await ChildProcess.start(try Peers.python.path, [example, "0"], log: log)
        defer { process.signal(SIGKILL) }
        var port = 0
        try await eventually("the example auth service to listen") {
            let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            guard let range = text.range(of: #"127\.0\.0\.1:(\d+)/check"#, options: .regularExpression) else { return false }
            port = Int(text[range].dropFirst("127.0.0.1:".count).dropLast("/check".count)) ?? 0
            return port > 0
        }
        let fixture = try await GatewayFixture.start { ws, _ in
            var route = SecurityTests.wsRoute("/term", ws)
            // Patient: the gateway's call-out runs in this process, which can stall for seconds under load.
            var http = HTTPAuthSettings(url: "http://127.0.0.1:\(port)/check")
            http.timeout = .seconds(10)
            route.auth = AuthSettings(method: .http(http))
            route.backendIdentity = BackendIdentity()
            return [route]
        }
        defer { Task { await fixture.stop() } }
        let (client, _) = try await fixture.client("/term/inspect", headers: ["Authorization: Bearer alice-token"])
        let greeting = try await client.readMessage().text
        await client.close()
        #expect(greeting.contains("X-WSGate-User: alice") && greeting.contains("X-Team: ops"), "\(greeting)")
        #expect(try await SecurityTests.status(fixture, "/term", headers: ["Authorization: Bearer nobody"]) == 401)
    }
}

/// A TCP service behind `backend_proxy_protocol: v2` learns the authenticated user from a TLV.
@Suite(.timeLimit(.minutes(3))) struct ProxyProtocolUserTests {
    @Test func theUserTravelsInAPROXYv2TLV() async throws {
        let recorder = RecordingHandler()
        let service = try await TestServices.start(group: MultiThreadedEventLoopGroup.singleton) { recorder }
        let port = service.localAddress!.port!
        let htpasswd = try SecurityTests.file("ann:$2b$04$NkwfxPIKKAo1SA/forXfsu7lVUXLX/yKBi0IJ5RiaJo8cM.FThj7y\n")
        let fixture = try await GatewayFixture.start { _, _ in
            var route = RouteConfiguration(path: "/tcp", backend: .tcp(host: "127.0.0.1", port: port))
            route.backendProxyProtocol = .v2
            route.auth = AuthSettings(method: .basic(htpasswdFile: htpasswd))
            return [route]
        }
        defer { Task { await fixture.stop(); try? await service.close() } }
        // The password of the bcrypt line above (CredentialStoreTests).
        let credential = Data("ann:secret".utf8).base64EncodedString()
        let (client, _) = try await fixture.client("/tcp", headers: ["Authorization: Basic \(credential)"])
        try await client.sendFrame(2, [7])
        // 16-byte preamble, 12 bytes of IPv4 addresses and ports, a 3-byte TLV head and "ann", then [7].
        try await eventually("the service to get the header and the message") { recorder.received.withLockedValue { $0.bytes.count >= 16 + 12 + 3 + 3 + 1 } }
        let bytes = recorder.received.withLockedValue { $0.bytes }
        let length = Int(bytes[14]) << 8 | Int(bytes[15])
        #expect(length == 12 + 3 + 3, "\(bytes)")
        #expect(Array(bytes[28..<34]) == [ProxyProtocol.userTLVType, 0, 3] + Array("ann".utf8), "\(bytes)")
        #expect(bytes.last == 7)
        await client.close()
    }
}

/// `limits.messages_per_second` / `bytes_per_second` against a client offering 10,000 messages a
/// second: the backend gets the limit's rate, every message whole and in order, and the gateway's
/// memory stays flat — the excess waits in the client's kernel buffers and HTTP/2 window, not in
/// the gateway. Rates and memory measured by the Python probe in its own process
/// (Tests/peers/rate_probe.py), which is also the route's `unix:` backend.
@Suite(.timeLimit(.minutes(3))) struct RateLimitTests {
    struct Probe: Decodable {
        var sent: Int
        var received: Int
        var in_order: Bool
        var messages_per_second: Double
        var bytes_per_second: Int
        var window: Double
        var rss_start: Int?
        var rss_end: Int?
        var backend_closed_after: Double?
    }

    static func probe(_ front: String, port: Int, path: String, backend: URL, pid: pid_t, seconds: Int = 8, leave: [String] = []) async throws -> Probe {
        let run = try await Peers.run(try Peers.python, [Peers.script("rate_probe.py"), front, "127.0.0.1", String(port), path,
                                                         "--backend", backend.path, "--pid", String(pid), "--seconds", String(seconds)] + leave, timeout: 90)
        return try Peers.lastJSON(Probe.self, in: run, from: "rate_probe.py")
    }

    @Test func aFloodingClientGetsItsRateAndNoMoreOverBothFronts() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { group.shutdownGracefully { _ in } }
        let sockets = (0..<4).map { _ in Scratch.path("rate", suffix: ".sock") }
        let config = Scratch.path("wsgate-rate-limits", suffix: ".yaml")
        try """
            admin: {address: "127.0.0.1:0"}
            listeners: [{address: "127.0.0.1:0"}]
            routes:
              - {path: /messages, backend: "unix:\(sockets[0].path)", limits: {messages_per_second: 50}}
              - {path: /messages-h2, backend: "unix:\(sockets[1].path)", limits: {messages_per_second: 50}}
              - {path: /bytes, backend: "unix:\(sockets[2].path)", limits: {bytes_per_second: 64KiB}}
              - {path: /leave, backend: "unix:\(sockets[3].path)", limits: {messages_per_second: 50, ping_interval: 1s}}
            """.write(to: config, atomically: true, encoding: .utf8)
        let gateway = try await GatewayProcess(arguments: ["--config", config.path, "--threads", "1"])
        defer { gateway.stop() }
        try await gateway.waitUntilListening()
        let pid = gateway.process.pid

        async let overHTTP1 = Self.probe("--h1", port: gateway.port, path: "/messages", backend: sockets[0], pid: pid)
        async let overHTTP2 = Self.probe("--h2", port: gateway.port, path: "/messages-h2", backend: sockets[1], pid: pid)
        async let byBytes = Self.probe("--h1", port: gateway.port, path: "/bytes", backend: sockets[2], pid: pid)
        // A client that leaves with its buffers full: TCP brings its end of stream only after its
        // data, which the gateway reads at 50 a second; the ping it gets once a ping interval is
        // answered by its kernel with a reset, which ends the session (else: minutes).
        async let leaving = Self.probe("--h1", port: gateway.port, path: "/leave", backend: sockets[3], pid: pid, seconds: 3, leave: ["--leave", "20"])
        let probes = try await [("HTTP/1.1 messages", overHTTP1), ("h2 messages", overHTTP2), ("HTTP/1.1 bytes", byBytes)]
        for (name, probe) in probes {
            print("rate limit, \(name): \(probe.messages_per_second) msg/s, \(probe.bytes_per_second) B/s over \(probe.window) s; \(probe.sent) of 80,000 offered messages framed, \(probe.received) delivered; gateway RSS \(probe.rss_start ?? 0) -> \(probe.rss_end ?? 0)")
            #expect(probe.in_order, "\(name): a message was lost, cut or reordered")
            #expect(probe.window > 3, "\(name): \(probe)")
            // The excess stays with the client: the gateway's memory does not follow the offer.
            let growth = (probe.rss_end ?? 0) - (probe.rss_start ?? 0)
            #expect(probe.rss_start ?? 0 > 0 && growth < 4 << 20, "\(name): RSS grew \(growth) bytes")
        }
        for (name, probe) in probes.prefix(2) {
            #expect(abs(probe.messages_per_second - 50) <= 5, "\(name): \(probe)")
        }
        let bytes = probes[2].1
        #expect(abs(Double(bytes.bytes_per_second) - 65_536) <= 6_554, "\(bytes)")

        let left = try await leaving
        print("rate limit, a client that left with \(left.sent) messages framed: its backend connection closed \(left.backend_closed_after ?? -1) s later")
        #expect(left.in_order && (left.backend_closed_after ?? 99) < 5, "\(left)")

        let admin = try await gateway.adminPort()
        let metrics = AdminTests.samples(try await AdminTests.request(admin, "GET", "/metrics", token: nil, group: group).1)
        #expect((metrics["wsgate_rate_limit_pauses_total{route=\"/messages\"}"] ?? 0) > 100, "\(metrics.filter { $0.key.contains("rate_limit") })")
    }
}
