import DemoBackends
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing
@testable import WSGate

/// Backend pools through a real `wsgate` process: failover past dead targets, the balancing
/// policies' splits, and health (passive ejection, active checks) as `/status` and `/metrics` show it.
@Suite(.timeLimit(.minutes(2))) struct PoolTests {
    /// Where targets that go down (or never were up) live. Tests run in parallel and bind
    /// 127.0.0.1:0 all the time: a port freed there can be taken by another test's server at once,
    /// which then answers for the "dead" target. Nothing else binds this address.
    static let downHost = "127.0.0.77"

    /// A greeting echo service on a given port (0: any), so a test can bring a target back.
    static func service(_ name: String, host: String = "127.0.0.1", port: Int = 0, group: EventLoopGroup) async throws -> Channel {
        try await ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(GreetAndEchoHandler(name)) }
            }
            .bind(host: host, port: port).get()
    }

    /// A port on ``downHost`` nothing listens on (bound, then closed).
    static func deadPort(group: EventLoopGroup) async throws -> Int {
        let channel = try await ServerBootstrap(group: group).bind(host: Self.downHost, port: 0).get()
        let port = channel.localAddress!.port!
        try await channel.close()
        return port
    }

    static func start(_ name: String, _ routes: String) async throws -> (GatewayProcess, Int) {
        let (gateway, _) = try await LifecycleTests.start(name, """
            admin: {address: "127.0.0.1:0"}
            listeners: [{address: "127.0.0.1:0"}]
            routes:
            \(routes)
            """, arguments: ["--watch-interval", "0", "--log-level", "info"])
        return (gateway, try await gateway.adminPort())
    }

    /// `/status` decoded: route path → target URL → fields.
    static func status(_ adminPort: Int, group: EventLoopGroup) async throws -> [String: [String: [String: Any]]] {
        let (code, body) = try await AdminTests.get(adminPort, "/status", group: group)
        #expect(code == 200)
        let json = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]
        var result: [String: [String: [String: Any]]] = [:]
        for route in json?["routes"] as? [[String: Any]] ?? [] {
            var targets: [String: [String: Any]] = [:]
            for target in route["targets"] as? [[String: Any]] ?? [] { targets[target["url"] as? String ?? ""] = target }
            result[route["path"] as? String ?? ""] = targets
        }
        return result
    }

    /// Opens a session, reads the target's greeting, closes.
    static func greeting(port: Int, path: String, headers: [String] = [], group: EventLoopGroup) async throws -> String {
        let (client, _) = try await TestClient.webSocket(port: port, path: path, group: group, headers: headers)
        let name = try await client.readMessage().text
        await client.close()
        return name
    }

    @Test func roundRobinFailsOverPastADeadTargetAndEjectsIt() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { group.shutdownGracefully { _ in } }
        let a = try await Self.service("A", group: group)
        let b = try await Self.service("B", group: group)
        defer { a.close(promise: nil); b.close(promise: nil) }
        let dead = try await Self.deadPort(group: group)
        let (gateway, admin) = try await Self.start("pool-rr", """
              - path: /app
                backends: ["tcp://\(Self.downHost):\(dead)", "tcp://127.0.0.1:\(a.localAddress!.port!)", "tcp://127.0.0.1:\(b.localAddress!.port!)"]
                balance: round_robin
                passive_health: {failures: 2, eject_for: 1m}
            """)
        defer { gateway.stop() }

        // Every client gets a live target, though a third of the turns start at the dead one.
        var counts: [String: Int] = [:]
        for _ in 0..<30 {
            counts[try await Self.greeting(port: gateway.port, path: "/app", group: group), default: 0] += 1
        }
        #expect(counts.count == 2 && counts.values.allSatisfy { $0 >= 13 }, "split: \(counts)")
        #expect(gateway.log.contains("backend target failed, trying the next one"))
        #expect(gateway.log.contains("backend target ejected for 60s"))

        let deadURL = "tcp://\(Self.downHost):\(dead)"
        let status = try await Self.status(admin, group: group)
        let deadState = status["/app"]?[deadURL]
        #expect(deadState?["available"] as? Bool == false)
        #expect(deadState?["ejections"] as? Int == 1)
        #expect((deadState?["last_error"] as? String)?.contains("unreachable") == true)
        #expect(status["/app"]?["tcp://127.0.0.1:\(a.localAddress!.port!)"]?["available"] as? Bool == true)
        let metrics = AdminTests.samples(try await AdminTests.get(admin, "/metrics", group: group).1)
        #expect(metrics["wsgate_backend_ejections_total{target=\"\(deadURL)\"}"] == 1)
        #expect(metrics["wsgate_backend_ejected{target=\"\(deadURL)\"}"] == 1)
    }

    @Test func aReloadKeepsTheHealthOfTheTargetsItNamesAgain() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { group.shutdownGracefully { _ in } }
        let a = try await Self.service("A", group: group)
        defer { a.close(promise: nil) }
        let dead = try await Self.deadPort(group: group)
        let deadURL = "tcp://\(Self.downHost):\(dead)"
        let pool = """
                backends: ["\(deadURL)", "tcp://127.0.0.1:\(a.localAddress!.port!)"]
                passive_health: {failures: 1, eject_for: 1m}
            """
        let head = """
            admin: {address: "127.0.0.1:0"}
            listeners: [{address: "127.0.0.1:0"}]
            routes:
              - path: /app

            """
        let (gateway, config) = try await LifecycleTests.start("pool-reload", head + pool, arguments: ["--watch-interval", "0", "--log-level", "info"])
        defer { gateway.stop() }
        let admin = try await gateway.adminPort()
        for _ in 0..<2 { #expect(try await Self.greeting(port: gateway.port, path: "/app", group: group) == "A") }
        #expect(try await Self.status(admin, group: group)["/app"]?[deadURL]?["ejections"] as? Int == 1)

        // The same pool again, and a second route naming it: one target, its ejection kept.
        try LifecycleTests.writeConfig(config, head + pool + "\n  - path: /other\n" + pool)
        gateway.signal(SIGHUP)
        try await eventually("the reload") { gateway.log.contains("configuration reloaded") }
        let status = try await Self.status(admin, group: group)
        for route in ["/app", "/other"] {
            #expect(status[route]?[deadURL]?["ejections"] as? Int == 1, "\(route)")
            #expect(status[route]?[deadURL]?["available"] as? Bool == false, "\(route)")
        }
        #expect(try await Self.greeting(port: gateway.port, path: "/other", group: group) == "A")
        #expect(gateway.log.components(separatedBy: "backend target failed").count == 2, "the ejected target was not tried again")
    }

    @Test func everyTargetDownAnswers502NamingEachAttempt() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { group.shutdownGracefully { _ in } }
        let (dead1, dead2) = (try await Self.deadPort(group: group), try await Self.deadPort(group: group))
        let (gateway, _) = try await Self.start("pool-dead", """
              - {path: /app, backends: ["tcp://\(Self.downHost):\(dead1)", "tcp://\(Self.downHost):\(dead2)"]}
            """)
        defer { gateway.stop() }
        let client = try await TestClient.connect(port: gateway.port, group: group)
        try await client.send(TestClient.handshake(path: "/app"))
        let (status, _, body) = try await client.readResponse()
        #expect(status == 502)
        #expect(body.contains("all 2 targets tried failed") && body.contains(":\(dead1)") && body.contains(":\(dead2)"), "\(body)")
        await client.close()
    }

    @Test func leastConnectionsSendsNewSessionsToTheEmptiestTarget() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { group.shutdownGracefully { _ in } }
        let a = try await Self.service("A", group: group)
        let b = try await Self.service("B", group: group)
        defer { a.close(promise: nil); b.close(promise: nil) }
        let (gateway, _) = try await Self.start("pool-lc", """
              - path: /app
                backends: ["tcp://127.0.0.1:\(a.localAddress!.port!)", "tcp://127.0.0.1:\(b.localAddress!.port!)"]
                balance: least_connections
            """)
        defer { gateway.stop() }

        var open: [(TestClient, String)] = []
        for _ in 0..<6 {
            let (client, _) = try await TestClient.webSocket(port: gateway.port, path: "/app", group: group)
            open.append((client, try await client.readMessage().text))
        }
        #expect(open.filter { $0.1 == "A" }.count == 3, "\(open.map(\.1))")
        // A's sessions end: the next three all go to A, the emptier one.
        for (client, name) in open where name == "A" {
            try await client.sendClose(1000)
            _ = try await client.readFrame()
            await client.close()
        }
        try await Task.sleep(nanoseconds: 200_000_000)  // the gateway sees the backend legs close
        var next: [String] = []
        for _ in 0..<3 {
            let (client, _) = try await TestClient.webSocket(port: gateway.port, path: "/app", group: group)
            next.append(try await client.readMessage().text)
            open.append((client, next.last!))
        }
        #expect(next == ["A", "A", "A"])
        for (client, _) in open { await client.close() }
    }

    @Test func headerHashKeepsEachKeyOnOneTarget() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { group.shutdownGracefully { _ in } }
        let a = try await Self.service("A", group: group)
        let b = try await Self.service("B", group: group)
        defer { a.close(promise: nil); b.close(promise: nil) }
        let (gateway, _) = try await Self.start("pool-hash", """
              - path: /app
                backends: ["tcp://127.0.0.1:\(a.localAddress!.port!)", "tcp://127.0.0.1:\(b.localAddress!.port!)"]
                balance: {hash_header: X-Session}
            """)
        defer { gateway.stop() }
        var placement: [String: String] = [:]
        for round in 0..<3 {
            for key in 0..<20 {
                let name = try await Self.greeting(port: gateway.port, path: "/app", headers: ["X-Session: user-\(key)"], group: group)
                if round == 0 { placement["user-\(key)"] = name } else { #expect(placement["user-\(key)"] == name, "user-\(key) moved") }
            }
        }
        #expect(Set(placement.values) == ["A", "B"], "20 keys all on one target: \(placement)")
    }

    @Test func activeChecksTakeADeadTargetOutAndBringItBack() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { group.shutdownGracefully { _ in } }
        let a = try await Self.service("A", group: group)
        var b = try await Self.service("B", host: Self.downHost, group: group)
        let portB = b.localAddress!.port!
        defer { a.close(promise: nil) }
        let urlB = "tcp://\(Self.downHost):\(portB)"
        let (gateway, admin) = try await Self.start("pool-active", """
              - path: /app
                backends: ["tcp://127.0.0.1:\(a.localAddress!.port!)", "\(urlB)"]
                health_check: {interval: 100ms, timeout: 1s, rise: 2, fall: 2}
            """)
        defer { gateway.stop() }

        try await b.close()
        try await Self.until("B is down in /status") { try await Self.status(admin, group: group)["/app"]?[urlB]?["up"] as? Bool == false }
        #expect(gateway.log.contains("backend target is down: 2 health checks failed"))
        for _ in 0..<6 {
            #expect(try await Self.greeting(port: gateway.port, path: "/app", group: group) == "A")
        }
        #expect(!gateway.log.contains("trying the next one"), "a target known to be down was tried")
        let metrics = AdminTests.samples(try await AdminTests.get(admin, "/metrics", group: group).1)
        #expect(metrics["wsgate_backend_up{target=\"\(urlB)\"}"] == 0)
        #expect((metrics["wsgate_backend_health_checks_total{target=\"\(urlB)\",result=\"failed\"}"] ?? 0) >= 2)

        b = try await Self.service("B", host: Self.downHost, port: portB, group: group)
        defer { b.close(promise: nil) }
        try await Self.until("B is up again") { try await Self.status(admin, group: group)["/app"]?[urlB]?["up"] as? Bool == true }
        #expect(gateway.log.contains("backend target is up: 2 health checks passed"))
        var names: Set<String> = []
        for _ in 0..<4 { names.insert(try await Self.greeting(port: gateway.port, path: "/app", group: group)) }
        #expect(names == ["A", "B"])
    }

    @Test func webSocketChecksNeedA101() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { group.shutdownGracefully { _ in } }
        let ws = try await WebSocketEchoServer.start(host: "127.0.0.1", port: 0, group: group)
        // Accepts TCP, answers HTTP with 503: a TCP check would call it healthy.
        let busy = try await TestServices.start(group: group) { SayAndCloseHandler("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n") }
        defer { ws.close(promise: nil); busy.close(promise: nil) }
        let good = "ws://127.0.0.1:\(ws.localAddress!.port!)/"
        let bad = "ws://127.0.0.1:\(busy.localAddress!.port!)/"
        let (gateway, admin) = try await Self.start("pool-ws", """
              - path: /echo
                backends: ["\(good)", "\(bad)"]
                health_check: {type: websocket, path: /, interval: 100ms, rise: 1, fall: 1}
            """)
        defer { gateway.stop() }
        try await Self.until("the 503 target is down") { try await Self.status(admin, group: group)["/echo"]?[bad]?["up"] as? Bool == false }
        let state = try await Self.status(admin, group: group)["/echo"]
        #expect(state?[good]?["up"] as? Bool == true)
        #expect((state?[bad]?["last_check"] as? String)?.contains("503") == true)
        for _ in 0..<4 {
            let (client, _) = try await TestClient.webSocket(port: gateway.port, path: "/echo", group: group)
            try await client.sendFrame(1, Array("hi".utf8))
            #expect(try await client.readMessage().text == "hi")
            await client.close()
        }
    }

    @Test func aTargetThatNeverAnswersTheHandshakeTimesOutFailsOverAndIsClosed() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { group.shutdownGracefully { _ in } }
        let ws = try await WebSocketEchoServer.start(host: "127.0.0.1", port: 0, group: group)
        let connections = ConnectionCounter()
        let silent = try await TestServices.start(group: group) { CountingSilentHandler(connections) }
        defer { ws.close(promise: nil); silent.close(promise: nil) }
        let silentURL = "ws://127.0.0.1:\(silent.localAddress!.port!)/"
        let (gateway, admin) = try await Self.start("pool-silent", """
              - path: /echo
                backends: ["\(silentURL)", "ws://127.0.0.1:\(ws.localAddress!.port!)/"]
                health_check: {interval: 200ms, timeout: 150ms, rise: 1, fall: 100}
                limits: {connect_timeout: 1s}
            """)
        defer { gateway.stop() }
        // 1 s per attempt and 2 s for the session: after the silent target's second, the echo's
        // handshake has a second too (with 300 ms each, a loaded machine answered 504).
        for _ in 0..<4 {
            let (client, _) = try await TestClient.webSocket(port: gateway.port, path: "/echo", group: group)
            try await client.sendFrame(1, Array("ok".utf8))
            #expect(try await client.readMessage().text == "ok")
            await client.close()
        }
        #expect(gateway.log.contains("backend did not answer within 1s"))
        // Sessions' and checks' connections to the silent target were all given up and closed.
        try await Task.sleep(nanoseconds: 400_000_000)
        #expect(connections.opened.withLockedValue { $0 } >= 3)
        try await Self.until("every connection to the silent target closed") { connections.open.withLockedValue { $0 } <= 1 }
        let state = try await Self.status(admin, group: group)["/echo"]?[silentURL]
        #expect((state?["last_check"] as? String)?.contains("did not answer within 150ms") == true, "\(String(describing: state))")
    }

    static func until(_ what: String, timeout: TimeAmount = .seconds(10), _ condition: () async throws -> Bool) async throws {
        let deadline = NIODeadline.now() + timeout
        while try await !condition() {
            if NIODeadline.now() > deadline { throw TestTimeout(what: what) }
            try await Task.sleep(nanoseconds: 50_000_000)
        }
    }
}

final class ConnectionCounter: Sendable {
    let open = NIOLockedValueBox(0)
    let opened = NIOLockedValueBox(0)
}

/// Accepts and never answers, counting its connections.
final class CountingSilentHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    let counter: ConnectionCounter
    init(_ counter: ConnectionCounter) { self.counter = counter }
    func channelActive(context: ChannelHandlerContext) {
        self.counter.open.withLockedValue { $0 += 1 }
        self.counter.opened.withLockedValue { $0 += 1 }
    }
    func channelInactive(context: ChannelHandlerContext) { self.counter.open.withLockedValue { $0 -= 1 } }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
    /// The gateway's FIN (the test services allow half-closure): close our side too.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event { context.close(promise: nil) }
    }
}
