import NIOCore
import Testing
@testable import WSGate

@Suite struct ConfigurationLoaderTests {
    @Test func fullFileParses() throws {
        let config = try ConfigurationLoader.parse(yaml: """
            server:
              handshake_timeout: 3s
              max_request_head_bytes: 8KiB
              threads: 2
              http2: {max_concurrent_streams: 64, initial_window_size: 256KiB}
            listeners:
              - address: "127.0.0.1:8080"
              - address: "[::1]:8081"
              - address: ":9000"
            routes:
              - path: /vnc
                backend: tcp://127.0.0.1:5900
                subprotocols: [binary]
              - path: /chat
                match: exact
                backend: ws://chat.internal:9000/socket?room=1
                limits:
                  max_message_bytes: 1MiB
                  idle_timeout: 5m
                  connect_timeout: 1500ms
              - path: /sock
                backend: unix:/run/app.sock
                message_type: text
                limits: { idle_timeout: 0 }
            """)
        #expect(config.server.handshakeTimeout == .seconds(3))
        #expect(config.server.maxRequestHeadBytes == 8192)
        #expect(config.server.threads == 2)
        #expect(config.server.http2.maxConcurrentStreams == 64)
        #expect(config.server.http2.initialWindowSize == 256 * 1024)
        #expect(config.listeners.map(\.address) == [ListenAddress(host: "127.0.0.1", port: 8080), ListenAddress(host: "::1", port: 8081), ListenAddress(host: "0.0.0.0", port: 9000)])
        #expect(config.routes[0].backend == .tcp(host: "127.0.0.1", port: 5900))
        #expect(config.routes[0].subprotocols == ["binary"])
        #expect(config.routes[1].match == .exact)
        #expect(config.routes[1].backend == .webSocket(host: "chat.internal", port: 9000, path: "/socket", query: "room=1"))
        #expect(config.routes[1].limits.maxMessageBytes == 1 << 20)
        #expect(config.routes[1].limits.idleTimeout == .minutes(5))
        #expect(config.routes[1].limits.connectTimeout == .milliseconds(1500))
        #expect(config.routes[2].backend == .unix(path: "/run/app.sock"))
        #expect(config.routes[2].messageType == .text)
        #expect(config.routes[2].limits.idleTimeout == nil)
    }

    func error(_ yaml: String) -> ConfigurationError? {
        do {
            _ = try ConfigurationLoader.parse(yaml: yaml, file: "gw.yaml")
            return nil
        } catch {
            return error
        }
    }

    static let base = "listeners:\n  - address: \"127.0.0.1:1\"\nroutes:\n"

    @Test func compressionSettings() throws {
        let config = try ConfigurationLoader.parse(yaml: Self.base + """
              - path: /on
                backend: tcp://h:1
                compression: on
              - path: /tuned
                backend: ws://h:2
                compression: {level: 1, window_bits: 10, memory_level: 4, client_window_bits: 9, server_no_context_takeover: true, min_size: 256}
              - path: /off
                backend: ws://h:3
                compression: {enabled: false, level: 9}
              - path: /default
                backend: ws://h:4
                backend_compression: on
            """, file: "gw.yaml")
        #expect(config.routes[3].backendCompression && !config.routes[1].backendCompression)
        let tcpError = try #require(self.error(Self.base + "  - path: /a\n    backend: tcp://h:1\n    backend_compression: on\n"))
        #expect(tcpError.message.contains("only applies to ws://"))
        #expect(config.routes[0].compression.enabled)
        let tuned = config.routes[1].compression
        #expect(tuned.enabled && tuned.level == 1 && tuned.windowBits == 10 && tuned.memoryLevel == 4)
        #expect(tuned.clientWindowBits == 9 && tuned.serverNoContextTakeover && tuned.minimumMessageBytes == 256)
        #expect(!config.routes[2].compression.enabled && config.routes[2].compression.level == 9)
        #expect(!config.routes[3].compression.enabled)
        for (bad, key) in [("compression: {window_bits: 8}", "window_bits"), ("compression: {level: 0}", "level"),
                           ("compression: maybe", "compression"), ("compression: {ratio: 2}", "ratio")] {
            let error = try #require(self.error(Self.base + "  - path: /a\n    backend: tcp://h:1\n    \(bad)\n"), "\(bad)")
            #expect(error.key?.hasSuffix(key) == true, "\(error)")
        }
    }

    @Test func resumeAndShareSettings() throws {
        let config = try ConfigurationLoader.parse(yaml: Self.base + """
              - path: /held
                backend: tcp://h:1
                resume: {window: 90s, buffer: 2MiB}
                limits: {max_held_sessions: 50}
              - path: /watched
                backend: unix:/run/console.sock
                resume: {}
                share: {key: header, viewers: all, max_viewers: 5, queue: 64KiB, replay_last: 20, ends: last_member}
              - path: /plain
                backend: tcp://h:2
            """)
        let held = config.routes[0]
        #expect(held.resume?.window == .seconds(90) && held.resume?.buffer == 2 << 20 && held.share == nil)
        #expect(held.limits.maxHeldSessions == 50)
        let watched = config.routes[1]
        #expect(watched.resume == ResumeSettings())
        #expect(watched.resume?.window == .seconds(30) && watched.resume?.buffer == 1 << 20)
        let share = try #require(watched.share)
        #expect(share.key == .header && share.viewers == .all && share.maxViewers == 5 && share.queue == 64 << 10 && share.replayLast == 20 && share.ends == .lastMember)
        #expect(config.routes[2].resume == nil && config.routes[2].share == nil && config.routes[2].limits.maxHeldSessions == 1000)
        let settings = try #require(HubSettings(route: watched))
        #expect(settings.capacity == 1 << 20 && settings.viewerLag == 64 << 10 && settings.viewersMayWrite && settings.outlivesOwner)
        #expect(HubSettings(route: config.routes[2]) == nil)
    }

    @Test(arguments: [
        ("  - path: /a\n    backend: ws://h:1\n    resume: {}\n", "routes[0].resume", "only applies to tcp:// and unix: backends"),
        ("  - path: /a\n    backend: tcp://h:1\n    resume: {window: 0s}\n", "routes[0].resume.window", "greater than zero"),
        ("  - path: /a\n    backend: tcp://h:1\n    resume: {buffer: 100}\n", "routes[0].resume.buffer", "at least 4KiB"),
        ("  - path: /a\n    backend: tcp://h:1\n    share: {key: cookie}\n", "routes[0].share.key", "'query', 'header' or 'user'"),
        ("  - path: /a\n    backend: tcp://h:1\n    share: {key: user}\n", "routes[0].share.key", "needs auth or client_subjects"),
        ("  - path: /a\n    backend: tcp://h:1\n    share: {viewers: some}\n", "routes[0].share.viewers", "'read_only' or 'all'"),
        ("  - path: /a\n    backend: tcp://h:1\n    share: {}\n    record: /tmp\n", "routes[0].record", "not recorded"),
    ])
    func badResumeAndShareSettingsAreNamed(route: String, key: String, message: String) throws {
        let error = try #require(self.error(Self.base + route))
        #expect(error.key == key, "\(error)")
        #expect(error.message.contains(message), "\(error)")
    }

    @Test func unknownKeyIsNamedWithItsLine() throws {
        let error = try #require(self.error(Self.base + "  - path: /a\n    backend: tcp://h:1\n    limts: {}\n"))
        #expect(error.line == 6)
        #expect(error.key == "routes[0].limts")
        #expect(error.description.hasPrefix("gw.yaml:6:"))
    }

    @Test func badBackendIsNamed() throws {
        let error = try #require(self.error(Self.base + "  - path: /a\n    backend: http://h:1\n"))
        #expect(error.key == "routes[0].backend")
        #expect(error.line == 5)
        #expect(error.message.contains("unsupported backend scheme"))
    }

    @Test(arguments: [
        ("  - path: a\n    backend: tcp://h:1\n", "routes[0].path"),
        ("  - path: /a\n    backend: tcp://h\n", "routes[0].backend"),
        ("  - path: /a\n    backend: tcp://h:99999\n", "routes[0].backend"),
        ("  - path: /a\n    backend: ws://h/\n    backend_tls: {ca: /nonexistent}\n", "routes[0].backend_tls"),
        ("  - path: /a\n    backend: wss://h/\n    backend_tls: {ca: /nonexistent}\n", "routes[0].backend_tls.ca"),
        ("  - path: /a\n    backend: tcp://h:1\n    limits: {idle_timeout: soon}\n", "routes[0].limits.idle_timeout"),
        ("  - path: /a\n    backend: tcp://h:1\n    limits: {max_message_bytes: -1}\n", "routes[0].limits.max_message_bytes"),
        ("  - path: /a\n    backend: tcp://h:1\n    match: fuzzy\n", "routes[0].match"),
        ("  - path: /a\n    backend: ws://h:1\n    message_type: text\n", "routes[0].message_type"),
        ("  - path: /a\n    backend: tcp://h:1\n    subprotocols: [\"a b\"]\n", "routes[0].subprotocols[0]"),
        ("  - backend: tcp://h:1\n", "routes[0].path"),
    ])
    func invalidRouteValuesAreNamed(route: String, key: String) throws {
        let error = try #require(self.error(Self.base + route))
        #expect(error.key == key, "\(error)")
        #expect(error.line != nil)
    }

    @Test func missingSectionsAndBadYAML() throws {
        #expect(try #require(self.error("routes:\n  - path: /a\n    backend: tcp://h:1\n")).key == "listeners")
        #expect(try #require(self.error("listeners:\n  - address: \"1.2.3.4\"\nroutes: []\n")).key == "listeners[0].address")
        let yaml = try #require(self.error("listeners: [\n"))
        #expect(yaml.message.contains("invalid YAML"))
        #expect(yaml.line != nil)
    }

    @Test func commandLineRoutes() throws {
        let config = try CommandLineConfiguration.make(listen: ["127.0.0.1:8080"], routes: ["/vnc=tcp://127.0.0.1:5900", "/=ws://127.0.0.1:9000/socket"])
        #expect(config.routes.map(\.path) == ["/vnc", "/"])
        #expect(throws: ConfigurationError.self) { try CommandLineConfiguration.make(listen: ["x"], routes: ["/=tcp://h:1"]) }
        #expect(throws: ConfigurationError.self) { try CommandLineConfiguration.make(listen: [":1"], routes: ["vnc"]) }
    }

    @Test func durationsAndSizes() {
        #expect(ValueParsing.duration("500ms") == .milliseconds(500))
        #expect(ValueParsing.duration("5m") == .minutes(5))
        #expect(ValueParsing.duration("2h") == .hours(2))
        #expect(ValueParsing.duration("1.5") == .milliseconds(1500))
        #expect(ValueParsing.duration("x") == nil)
        #expect(ValueParsing.size("64KiB") == 65536)
        #expect(ValueParsing.size("1 MB") == 1_000_000)
        #expect(ValueParsing.size("12") == 12)
        #expect(ValueParsing.size("-3") == nil)
    }
}

@Suite struct RouteTableTests {
    func table(_ routes: [(String, PathMatch)]) -> RouteTable {
        RouteTable(routes.map { RouteConfiguration(path: $0.0, match: $0.1, backend: .tcp(host: "h", port: 1)) })
    }

    @Test func longestPrefixWinsOnSegmentBoundaries() {
        let table = self.table([("/", .prefix), ("/vnc", .prefix), ("/vnc/admin", .prefix)])
        #expect(table.route(forTarget: "/vnc")?.index == 1)
        #expect(table.route(forTarget: "/vnc/")?.index == 1)
        #expect(table.route(forTarget: "/vnc/x?token=1")?.index == 1)
        #expect(table.route(forTarget: "/vnc/admin/panel")?.index == 2)
        #expect(table.route(forTarget: "/vncx")?.index == 0)
        #expect(table.route(forTarget: "/other")?.index == 0)
    }

    @Test func exactRoutesMatchOnlyTheirPathAndWinOverPrefixes() {
        let table = self.table([("/api", .prefix), ("/api/ws", .exact)])
        #expect(table.route(forTarget: "/api/ws?x=1")?.index == 1)
        #expect(table.route(forTarget: "/api/ws/more")?.index == 0)
        #expect(self.table([("/only", .exact)]).route(forTarget: "/") == nil)
    }

    func hosted(_ routes: [(String?, String, PathMatch)]) -> RouteTable {
        RouteTable(routes.map {
            var route = RouteConfiguration(path: $0.1, match: $0.2, backend: .tcp(host: "h", port: 1))
            route.host = $0.0.flatMap(HostPattern.init(parsing:))
            return route
        })
    }

    @Test func hostsAreTriedExactThenLongestWildcardThenAnyHost() {
        let table = self.hosted([
            (nil, "/", .prefix),                        // 0
            ("*.example.com", "/", .prefix),            // 1
            ("*.eu.example.com", "/", .prefix),         // 2
            ("app.example.com", "/ws", .prefix),        // 3
            ("app.example.com", "/ws/admin", .exact),   // 4
            (nil, "/ws/admin", .exact),                 // 5
        ])
        #expect(table.evaluationOrder.map(\.index) == [4, 3, 2, 1, 5, 0])
        #expect(table.route(forTarget: "/ws/x", host: "app.example.com")?.index == 3)
        #expect(table.route(forTarget: "/ws/x", host: "APP.Example.COM:8443")?.index == 3, "case and port do not matter")
        #expect(table.route(forTarget: "/ws/x", host: "app.example.com.")?.index == 3, "nor a trailing dot")
        #expect(table.route(forTarget: "/ws/admin", host: "app.example.com")?.index == 4)
        #expect(table.route(forTarget: "/other", host: "app.example.com")?.index == 1, "no path of its own: the wildcard's")
        #expect(table.route(forTarget: "/ws", host: "a.eu.example.com")?.index == 2)
        #expect(table.route(forTarget: "/ws", host: "x.y.example.com")?.index == 1, "wildcards cover every depth")
        #expect(table.route(forTarget: "/ws", host: "example.com")?.index == 0, "but not the domain itself")
        #expect(table.route(forTarget: "/ws", host: "badexample.com")?.index == 0)
        #expect(table.route(forTarget: "/ws/admin", host: "other.test")?.index == 5)
        #expect(table.route(forTarget: "/ws/admin", host: nil)?.index == 5, "no Host: host-less routes only")
        #expect(self.hosted([("a.test", "/", .prefix)]).route(forTarget: "/", host: nil) == nil)
        #expect(self.hosted([("[::1]", "/", .prefix)]).route(forTarget: "/", host: "[::1]:8080")?.index == 0)
    }

    @Test func duplicatesAreReportedAsShadowed() {
        let table = self.hosted([
            ("a.test", "/x", .prefix), (nil, "/x", .prefix), ("a.test", "/x", .prefix), ("a.test", "/x", .exact), ("b.test", "/x", .prefix),
        ])
        #expect(table.shadowed.map { [$0.route.index, $0.by.index] } == [[2, 0]])
    }

    @Test func hostPatternsAreValidated() {
        #expect(HostPattern(parsing: "App.Example.com") == .exact("app.example.com"))
        #expect(HostPattern(parsing: "*.example.com") == .subdomains(of: ".example.com"))
        for bad in ["", "*", "*.", "a..b", "a.example.com:8080", "exa mple.com", "a.*.com", "http://a.com", "*example.com"] {
            #expect(HostPattern(parsing: bad) == nil, "\(bad)")
        }
    }

    @Test func firstListedWinsATie() {
        let table = self.table([("/a", .prefix), ("/a", .prefix)])
        #expect(table.route(forTarget: "/a/b")?.index == 0)
    }

    @Test func backendTargets() {
        let route = RouteConfiguration(path: "/chat", backend: .tcp(host: "h", port: 1))
        #expect(RouteTable.backendTarget(clientTarget: "/chat/room?x=1", route: route, backendPath: nil, backendQuery: nil) == "/chat/room?x=1")
        #expect(RouteTable.backendTarget(clientTarget: "/chat/room?x=1", route: route, backendPath: "/socket", backendQuery: nil) == "/socket/room?x=1")
        #expect(RouteTable.backendTarget(clientTarget: "/chat", route: route, backendPath: "/", backendQuery: "k=v") == "/?k=v")
        #expect(RouteTable.backendTarget(clientTarget: "/chat/a", route: route, backendPath: "/", backendQuery: "k=v") == "/a?k=v")
    }

    @Test func backendURLs() throws {
        #expect(try BackendURL(parsing: "ws://[::1]:9000") == .webSocket(host: "::1", port: 9000, path: nil, query: nil))
        #expect(try BackendURL(parsing: "ws://h") == .webSocket(host: "h", port: 80, path: nil, query: nil))
        #expect(try BackendURL(parsing: "unix:///run/x.sock") == .unix(path: "/run/x.sock"))
        #expect(try BackendURL(parsing: "wss://h/x") == .webSocket(host: "h", port: 443, path: "/x", query: nil, tls: true))
        #expect(throws: BackendURL.ParseError.missingPort) { try BackendURL(parsing: "tcp://h") }
    }
}
