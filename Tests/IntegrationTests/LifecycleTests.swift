import DemoBackends
import Foundation
import NIOCore
import NIOPosix
import Testing
@testable import WSGate

/// Says its name when a connection opens, then echoes: tells which backend a session reached.
final class GreetAndEchoHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    let greeting: String

    init(_ greeting: String) { self.greeting = greeting }

    func channelActive(context: ChannelHandlerContext) {
        context.writeAndFlush(NIOAny(context.channel.allocator.buffer(string: self.greeting)), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.writeAndFlush(data, promise: nil)
    }
}

/// Signals as an operator (or Kubernetes) sends them to a real `wsgate` process: SIGTERM drains,
/// a second one cuts, SIGHUP and file changes reload the routing table.
@Suite(.serialized, .timeLimit(.minutes(2))) struct LifecycleTests {
    static func writeConfig(_ url: URL, _ yaml: String) throws {
        // Written whole and renamed into place, as editors and ConfigMap updates do.
        let temporary = url.appendingPathExtension("tmp")
        try yaml.write(to: temporary, atomically: false, encoding: .utf8)
        guard rename(temporary.path, url.path) == 0 else { throw TestTimeout(what: "rename to \(url.path): errno \(errno)") }
    }

    static func temporaryConfig(_ name: String) -> URL {
        Scratch.path("wsgate-\(name)", suffix: ".yaml")
    }

    /// A wsgate process on a new configuration file holding `yaml`, listening; `stop()` removes the file too.
    static func start(_ name: String, _ yaml: String, arguments: [String] = []) async throws -> (GatewayProcess, URL) {
        let config = self.temporaryConfig(name)
        try self.writeConfig(config, yaml)
        let gateway = try await GatewayProcess(arguments: ["--config", config.path] + arguments)
        gateway.removesOnStop.append(config)
        do {
            try await gateway.waitUntilListening()
        } catch {
            gateway.stop()
            throw error
        }
        return (gateway, config)
    }

    /// A session that greets: its first message is the backend's name.
    static func session(port: Int, path: String, group: EventLoopGroup) async throws -> (TestClient, String) {
        let (client, _) = try await TestClient.webSocket(port: port, path: path, group: group)
        return (client, try await client.readMessage().text)
    }

    static func echo(_ client: TestClient, _ text: String) async throws -> String {
        try await client.sendFrame(1, Array(text.utf8))
        return try await client.readMessage().text
    }

    @Test func sigtermDrainsEverySessionWith1001AndExitsZero() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        defer { group.shutdownGracefully { _ in } }
        let echo = try await TCPServices.startEcho(host: "127.0.0.1", port: 0, group: group)
        defer { echo.close(promise: nil) }
        let (gateway, _) = try await Self.start("drain", """
            server: {drain_timeout: 8s}
            listeners: [{address: "127.0.0.1:0"}]
            routes: [{path: /tcp, backend: "tcp://127.0.0.1:\(echo.localAddress!.port!)", limits: {ping_interval: 0}}]
            """)
        defer { gateway.stop() }

        // No liveness pings: these clients answer none, and opening the 100 sessions has taken over
        // two ping intervals with both cores busy (the first ones were closed as gone, not drained).
        var clients: [TestClient] = []
        for index in 0..<100 {
            let (client, _) = try await TestClient.webSocket(port: gateway.port, path: "/tcp", group: group)
            try await client.sendFrame(2, [UInt8(index)])
            #expect(try await client.readMessage().payload == [UInt8(index)])
            clients.append(client)
        }
        let started = NIODeadline.now()
        gateway.signal(SIGTERM)
        // Each client hears 1001 Going Away and answers it, as a browser would.
        try await withThrowingTaskGroup(of: UInt16?.self) { tasks in
            for client in clients {
                tasks.addTask {
                    let frame = try await client.readMessage()
                    try await client.sendClose(1001)
                    return frame.closeCode
                }
            }
            var codes: [UInt16?] = []
            for try await code in tasks { codes.append(code) }
            #expect(codes.count == 100)
            #expect(codes.allSatisfy { $0 == 1001 }, "\(codes)")
        }
        let status = try await gateway.waitForExit(timeout: .seconds(8))
        #expect(status == 0, "\(gateway.log.suffix(2000))")
        #expect(NIODeadline.now() - started < .seconds(8))
        #expect(gateway.log.contains("drained: 100 closed cleanly"), "\(gateway.log.suffix(2000))")
        for client in clients { await client.close() }
    }

    @Test func aSecondSignalCutsTheDrainShort() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { group.shutdownGracefully { _ in } }
        let echo = try await TCPServices.startEcho(host: "127.0.0.1", port: 0, group: group)
        defer { echo.close(promise: nil) }
        // Clients that never answer the close would hold the drain for a minute.
        let (gateway, _) = try await Self.start("cut", """
            server: {drain_timeout: 60s, close_timeout: 60s}
            admin: {address: "127.0.0.1:0"}
            listeners: [{address: "127.0.0.1:0"}]
            routes: [{path: /tcp, backend: "tcp://127.0.0.1:\(echo.localAddress!.port!)"}]
            """)
        defer { gateway.stop() }
        let adminPort = try await gateway.adminPort()
        #expect(try await AdminTests.get(adminPort, "/readyz", group: group).0 == 200)
        var clients: [TestClient] = []
        for _ in 0..<3 {
            clients.append(try await TestClient.webSocket(port: gateway.port, path: "/tcp", group: group).0)
        }
        gateway.signal(SIGTERM)
        for client in clients { #expect(try await client.readMessage().closeCode == 1001) }
        try await Task.sleep(nanoseconds: 300_000_000)
        #expect(gateway.process.isRunning, "the drain waits for the closing handshakes")
        // While it drains: no new connections, and not ready (the admin listener stays up for probes).
        await #expect(throws: (any Error).self) { try await TestClient.connect(port: gateway.port, group: group) }
        #expect(try await AdminTests.get(adminPort, "/readyz", group: group) == (503, "not ready\n"))
        gateway.signal(SIGTERM)
        let status = try await gateway.waitForExit(timeout: .seconds(5))
        #expect(status == 0, "\(gateway.log.suffix(2000))")
        #expect(gateway.log.contains("drain ended by the second signal: 0 closed cleanly, 3 cut"), "\(gateway.log.suffix(2000))")
        for client in clients { await client.close() }
    }

    @Test func sighupSwapsTheTableForNewSessionsWhileLiveOnesKeepTheirRoute() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { group.shutdownGracefully { _ in } }
        let serviceA = try await TestServices.start(group: group) { GreetAndEchoHandler("A") }
        let serviceB = try await TestServices.start(group: group) { GreetAndEchoHandler("B") }
        defer { serviceA.close(promise: nil); serviceB.close(promise: nil) }
        let (portA, portB) = (serviceA.localAddress!.port!, serviceB.localAddress!.port!)
        let (gateway, config) = try await Self.start("reload", """
            listeners: [{address: "127.0.0.1:0"}]
            routes:
              - {path: /app, backend: "tcp://127.0.0.1:\(portA)"}
              - {path: /old, backend: "tcp://127.0.0.1:\(portA)"}
            """, arguments: ["--watch-interval", "0"])
        defer { gateway.stop() }
        let (before, greeting) = try await Self.session(port: gateway.port, path: "/app", group: group)
        #expect(greeting == "A")

        // /app moves to B, /old goes, /new comes, and a second listener opens.
        try Self.writeConfig(config, """
            listeners: [{address: "127.0.0.1:0"}, {address: "127.0.0.2:0"}]
            routes:
              - {path: /app, backend: "tcp://127.0.0.1:\(portB)"}
              - {path: /new, backend: "tcp://127.0.0.1:\(portA)"}
            """)
        gateway.signal(SIGHUP)
        try await eventually("the reload") { gateway.log.contains("configuration reloaded") }

        let (after, newGreeting) = try await Self.session(port: gateway.port, path: "/app", group: group)
        #expect(newGreeting == "B")
        #expect(try await Self.echo(before, "still here") == "still here", "the session opened before the reload keeps its backend")
        #expect(try await Self.session(port: gateway.port, path: "/new", group: group).1 == "A")
        let gone = try await TestClient.connect(port: gateway.port, group: group)
        try await gone.send(TestClient.handshake(path: "/old"))
        #expect(try await gone.readHead().0 == 404)
        try await eventually("the listener on 127.0.0.2") { gateway.listeningPort(host: "127.0.0.2") != nil }
        let secondPort = try #require(gateway.listeningPort(host: "127.0.0.2"))
        let viaSecond = try await TestClient.connect(port: secondPort, host: "127.0.0.2", group: group)
        try await viaSecond.send(TestClient.handshake(path: "/app"))
        #expect(try await viaSecond.readHead().0 == 101)
        #expect(try await viaSecond.readMessage().text == "B")
        for client in [before, after, viaSecond, gone] { await client.close() }

        // Back to one listener: the second one closes.
        try Self.writeConfig(config, """
            listeners: [{address: "127.0.0.1:0"}]
            routes: [{path: /app, backend: "tcp://127.0.0.1:\(portB)"}]
            """)
        gateway.signal(SIGHUP)
        try await eventually("the second reload") { gateway.log.components(separatedBy: "configuration reloaded").count == 3 }
        await #expect(throws: (any Error).self) { try await TestClient.connect(port: secondPort, host: "127.0.0.2", group: group) }
    }

    @Test func anInvalidReloadKeepsTheOldTable() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { group.shutdownGracefully { _ in } }
        let service = try await TestServices.start(group: group) { GreetAndEchoHandler("A") }
        defer { service.close(promise: nil) }
        let valid = """
            listeners: [{address: "127.0.0.1:0"}]
            routes: [{path: /app, backend: "tcp://127.0.0.1:\(service.localAddress!.port!)"}]
            """
        let (gateway, config) = try await Self.start("invalid", valid, arguments: ["--watch-interval", "0"])
        defer { gateway.stop() }

        // Broken YAML, then YAML that parses but names a token file that does not exist.
        let invalid = [
            "listeners: [{address: \"127.0.0.1:0\"}\nroutes: [",
            valid.replacingOccurrences(of: "/app", with: "/other") + "\n    auth: {bearer_tokens_file: /nonexistent/tokens}",
        ]
        for (index, text) in invalid.enumerated() {
            try Self.writeConfig(config, text)
            gateway.signal(SIGHUP)
            try await eventually("reload \(index) refused") { gateway.log.components(separatedBy: "configuration reload refused").count == index + 2 }
            #expect(try await Self.session(port: gateway.port, path: "/app", group: group).1 == "A", "the old table still routes")
            let other = try await TestClient.connect(port: gateway.port, group: group)
            try await other.send(TestClient.handshake(path: "/other"))
            #expect(try await other.readHead().0 == 404)
            await other.close()
        }
        #expect(!gateway.log.contains("configuration reloaded"))
        #expect(gateway.process.isRunning)
    }

    @Test func aChangedFileIsReloadedWithoutASignal() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { group.shutdownGracefully { _ in } }
        let serviceA = try await TestServices.start(group: group) { GreetAndEchoHandler("A") }
        let serviceB = try await TestServices.start(group: group) { GreetAndEchoHandler("B") }
        defer { serviceA.close(promise: nil); serviceB.close(promise: nil) }
        let yaml = { (port: Int) in """
            listeners: [{address: "127.0.0.1:0"}]
            routes: [{path: /app, backend: "tcp://127.0.0.1:\(port)"}]
            """ }
        let (gateway, config) = try await Self.start("watch", yaml(serviceA.localAddress!.port!), arguments: ["--watch-interval", "0.1"])
        defer { gateway.stop() }
        #expect(try await Self.session(port: gateway.port, path: "/app", group: group).1 == "A")
        try Self.writeConfig(config, yaml(serviceB.localAddress!.port!))
        try await eventually("the watched file's reload") { gateway.log.contains("file change: reloading the configuration") && gateway.log.contains("configuration reloaded") }
        #expect(try await Self.session(port: gateway.port, path: "/app", group: group).1 == "B")
    }

    @Test func reusePortLetsANewProcessTakeOverWhileTheOldOneDrains() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { group.shutdownGracefully { _ in } }
        let serviceA = try await TestServices.start(group: group) { GreetAndEchoHandler("old") }
        let serviceB = try await TestServices.start(group: group) { GreetAndEchoHandler("new") }
        defer { serviceA.close(promise: nil); serviceB.close(promise: nil) }
        let yaml = { (address: String, backend: Int) in """
            listeners: [{address: "\(address)", reuse_port: true}]
            routes: [{path: /app, backend: "tcp://127.0.0.1:\(backend)"}]
            """ }
        let (old, _) = try await Self.start("reuse-old", yaml("127.0.0.1:0", serviceA.localAddress!.port!))
        defer { old.stop() }
        let (live, greeting) = try await Self.session(port: old.port, path: "/app", group: group)
        #expect(greeting == "old")

        // The new process binds the same port while the old one still listens.
        let (new, _) = try await Self.start("reuse-new", yaml("127.0.0.1:\(old.port)", serviceB.localAddress!.port!))
        defer { new.stop() }
        #expect(new.port == old.port)
        old.signal(SIGTERM)
        #expect(try await live.readMessage().closeCode == 1001)
        try? await live.sendClose(1001)  // a stall of this process past close_timeout: cut, which is allowed
        #expect(try await old.waitForExit(timeout: .seconds(10)) == 0)
        // Every new connection now lands on the new process.
        for _ in 0..<10 {
            let (client, greeting) = try await Self.session(port: old.port, path: "/app", group: group)
            #expect(greeting == "new")
            await client.close()
        }
        await live.close()
    }

    @Test func environmentVariablesConfigureTheGatewayAndJSONLogsParse() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { group.shutdownGracefully { _ in } }
        let service = try await TestServices.start(group: group) { GreetAndEchoHandler("env") }
        defer { service.close(promise: nil) }
        // Flags-free: the file comes from WSGATE_CONFIG, its backend port from ${SERVICE_PORT},
        // its listener from WSGATE_LISTEN.
        let config = Self.temporaryConfig("env")
        defer { try? FileManager.default.removeItem(at: config) }
        try Self.writeConfig(config, """
            server: {trusted_proxies: [127.0.0.0/8]}
            listeners: [{address: "127.0.0.1:1"}]  # replaced by WSGATE_LISTEN
            routes: [{path: /env, backend: "tcp://127.0.0.1:${SERVICE_PORT}"}]
            """)
        let gateway = try await GatewayProcess(arguments: [], environment: [
            "WSGATE_CONFIG": config.path,
            "WSGATE_LISTEN": "127.0.0.1:0",
            "SERVICE_PORT": "\(service.localAddress!.port!)",
            "WSGATE_LOG_FORMAT": "json",
        ])
        defer { gateway.stop() }
        try await gateway.waitUntilListening()
        let (client, _) = try await TestClient.webSocket(port: gateway.port, path: "/env", group: group, headers: ["X-Forwarded-For: 203.0.113.9"])
        #expect(try await client.readMessage().text == "env")
        try await client.sendClose(1000)
        _ = try await client.readFrame()
        await client.close()
        try await eventually("the access log line") { gateway.log.contains("session ended") }
        let lines = gateway.log.split(separator: "\n")
        let objects = try lines.map { try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any], "\($0)") }
        let session = try #require(objects.first { $0["message"] as? String == "session ended" })
        #expect(session["level"] as? String == "info")
        #expect(session["route"] as? String == "/env")
        #expect(session["backend"] as? String == "tcp://127.0.0.1:\(service.localAddress!.port!)")
        #expect(session["protocol"] as? String == "http/1.1")
        #expect(session["close_code"] as? String == "1000")
        #expect(session["closed_by"] as? String == "client")
        #expect(session["bytes_out"] as? String == "3")
        #expect((session["client"] as? String)?.hasPrefix("203.0.113.9") == true, "the forwarded client: \(session)")
        #expect((session["peer"] as? String)?.hasPrefix("127.0.0.1:") == true, "the proxy it came through")
        #expect((session["time"] as? String)?.hasSuffix("Z") == true)
    }

    @Test func listenAndRouteFromTheEnvironmentWithoutAFile() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { group.shutdownGracefully { _ in } }
        let service = try await TestServices.start(group: group) { GreetAndEchoHandler("flags") }
        defer { service.close(promise: nil) }
        let gateway = try await GatewayProcess(arguments: [], environment: [
            "WSGATE_LISTEN": "127.0.0.1:0",
            "WSGATE_ROUTE": "/a=tcp://127.0.0.1:\(service.localAddress!.port!), /b=tcp://127.0.0.1:1",
            "WSGATE_LOG_LEVEL": "debug",
        ])
        defer { gateway.stop() }
        try await gateway.waitUntilListening()
        #expect(try await Self.session(port: gateway.port, path: "/a", group: group).1 == "flags")
        #expect(gateway.log.contains("path=/b"))
        #expect(gateway.log.contains("debug wsgate"))
        let (status, output) = try await Peers.run(try GatewayProcess.executable, ["--log-format", "yaml", "--listen", ":0", "--route", "/a=tcp://h:1"])
        #expect(status != 0 && output.contains("yaml"), "\(output)")
    }
}
