import Foundation
import NIOCore
import Testing
@testable import WSGate

/// The key declarations drive reading, unknown-key errors, error paths and `wsgate check`'s
/// printout: these tests hold each of those to the declarations.
@Suite struct ConfigurationKeyTests {
    static let listener = "listeners:\n  - address: \"127.0.0.1:1\"\nroutes:\n"

    func error(_ yaml: String) -> ConfigurationError? {
        ConfigurationLoaderTests().error(yaml)
    }

    @Test func everyShownRouteKeyIsReadAndShownBack() throws {
        let config = try ConfigurationLoader.parse(yaml: Self.listener + """
              - path: /chat
                backend: ws://127.0.0.1:9/
                subprotocols: [chat, superchat]
                limits: {max_message_bytes: 2MiB, max_frame_bytes: 64KiB, idle_timeout: 5m, connect_timeout: 2s,
                         ping_interval: 0, connect_attempts: 2, connect_deadline: 3s}
                compression: {level: 3, window_bits: 10, memory_level: 4, client_window_bits: 9, server_no_context_takeover: on, min_size: 128}
                backend_compression: on
                origins: ["https://app.example.com", "*.example.org"]
                client_subjects: [CN=alice, O=Ops]
            """)
        let shown = Set(ConfigurationSummary.route(config.routes[0]))
        let expected = [
            "subprotocols=chat,superchat", "limits.max_message_bytes=2MiB", "limits.max_frame_bytes=64KiB", "limits.idle_timeout=300s",
            "limits.connect_timeout=2s", "limits.ping_interval=off", "limits.connect_attempts=2", "limits.connect_deadline=3s",
            "compression.enabled=on", "compression.level=3", "compression.window_bits=10", "compression.memory_level=4",
            "compression.client_window_bits=9", "compression.server_no_context_takeover=on", "compression.min_size=128",
            "backend_compression=on", "origins=https://app.example.com, *.example.org", "client_subjects=CN=alice;O=Ops", "auth=none",
        ]
        for item in expected {
            #expect(shown.contains(item), "\(item) not in \(shown.sorted())")
        }
    }

    @Test func keysThatDoNotApplyToARouteAreNotShown() throws {
        let config = try ConfigurationLoader.parse(yaml: Self.listener + """
              - {path: /ws, backend: "ws://127.0.0.1:9/"}
              - {path: /tcp, backend: "tcp://127.0.0.1:9", message_type: text}
            """)
        let webSocket = ConfigurationSummary.route(config.routes[0]).map { $0.prefix { $0 != "=" } }
        let tcp = ConfigurationSummary.route(config.routes[1]).map { $0.prefix { $0 != "=" } }
        #expect(!webSocket.contains("message_type") && !webSocket.contains("framing") && !webSocket.contains("backend_tls"))
        #expect(webSocket.contains("backend_compression"))
        #expect(tcp.contains("message_type") && tcp.contains("framing") && tcp.contains("invalid_utf8"))
        #expect(!tcp.contains("backend_compression"))
    }

    @Test func anUnknownKeyListsTheDeclaredOnes() throws {
        let route = try #require(self.error(Self.listener + "  - {path: /a, backend: \"tcp://h:1\", colour: red}\n"))
        #expect(route.message == "unknown key (expected one of: \(RouteConfiguration.keys.map(\.name).joined(separator: ", ")))")
        let compression = try #require(self.error(Self.listener + "  - {path: /a, backend: \"tcp://h:1\", compression: {ratio: 2}}\n"))
        #expect(compression.key == "routes[0].compression.ratio")
        #expect(compression.message.contains(CompressionSettings.keys.map(\.name).joined(separator: ", ")))
        let top = try #require(self.error("listners: []\n"))
        #expect(top.message.contains(GatewayConfiguration.keys.map(\.name).joined(separator: ", ")))
    }

    @Test func noSectionDeclaresAKeyTwice() {
        let sections: [[String]] = [
            GatewayConfiguration.keys.map(\.name), ServerSettings.keys.map(\.name), HTTP2Settings.keys.map(\.name),
            ListenerConfiguration.keys.map(\.name), ListenerTLS.keys.map(\.name), AdminConfiguration.keys.map(\.name),
            RouteConfiguration.keys.map(\.name), BackendTLS.keys.map(\.name), CompressionSettings.keys.map(\.name),
            AuthSettings.keys.map(\.name), JWTSettings.keys.map(\.name), DynamicTargets.keys.map(\.name), ConnectionLimits.keys.map(\.name),
            HealthCheckSettings.keys.map(\.name), PassiveHealthSettings.keys.map(\.name), StaticSettings.keys.map(\.name),
            RecordSettings.keys.map(\.name), LineFraming.keys.map(\.name), LengthPrefix.keys.map(\.name),
        ]
        for names in sections {
            #expect(Set(names).count == names.count, "\(names)")
        }
    }

    @Test func requiredKeysAreNamedWhenMissing() throws {
        let address = try #require(self.error("listeners:\n  - reuse_port: on\nroutes:\n  - {path: /, backend: \"tcp://h:1\"}\n"))
        #expect(address.key == "listeners[0].address" && address.message == "missing" && address.line == 2)
        let allowed = try #require(self.error(Self.listener + "  - {path: /a, targets: {token_file: /nonexistent}}\n"))
        #expect(allowed.key == "routes[0].targets.allowed" && allowed.message.hasPrefix("missing: list the host:port patterns"))
    }

    @Test func filesAreCheckedOnlyOnceTheWholeFileIsRead() throws {
        let tls = "listeners:\n  - address: \"127.0.0.1:1\"\n    tls: {certificate: /nonexistent/cert.pem, key: /nonexistent/key.pem}\nroutes:\n"
        // A mistake later in the file is found before the missing file.
        let typo = try #require(self.error(tls + "  - {path: /a, backend: \"tcp://h:1\", limts: {}}\n"))
        #expect(typo.key == "routes[0].limts")
        // The missing file is then named with its key and line.
        let missing = try #require(self.error(tls + "  - {path: /a, backend: \"tcp://h:1\"}\n"))
        #expect(missing.key == "listeners[0].tls.certificate" && missing.line == 3)
        #expect(missing.message == "cannot read file '/nonexistent/cert.pem'")
    }

    @Test func aShorthandStandsForItsMappingAndItsRootIsResolved() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("wsgate-keys-\(UUID().uuidString.prefix(8))")
        let link = directory.path + "-link"
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: directory.path)
        defer {
            try? FileManager.default.removeItem(atPath: link)
            try? FileManager.default.removeItem(at: directory)
        }
        let config = try ConfigurationLoader.parse(yaml: Self.listener + "  - {path: /app, static: \(link)}\n  - {path: /b, backend: \"tcp://h:1\", compression: on}\n")
        #expect(config.routes[0].staticFiles?.root == directory.resolvingSymlinksInPath().path)
        #expect(!config.routes[0].servesWebSockets)
        #expect(config.routes[1].compression.enabled && config.routes[1].compression.level == CompressionSettings().level)
        let missing = try #require(self.error(Self.listener + "  - {path: /app, static: /nonexistent/www}\n"))
        #expect(missing.key == "routes[0].static.root" && missing.line == 4)
        let bad = try #require(self.error(Self.listener + "  - {path: /b, backend: \"tcp://h:1\", compression: maybe}\n"))
        #expect(bad.key == "routes[0].compression" && bad.message.hasPrefix("expected true/false"))
    }

    @Test func conditionsAcrossKeysPointAtTheKeyThatMayNotBeGiven() throws {
        let cases: [(String, String, String)] = [
            ("{path: /a, backend: \"ws://h:1/\", framing: lines}", "routes[0].framing", "only applies to tcp:// and unix: backends"),
            ("{path: /a, backend: \"tcp://h:1\", invalid_utf8: close}", "routes[0].invalid_utf8", "only applies with message_type: text"),
            ("{path: /a, backend: \"tcp://h:1\", backends: [\"tcp://h:2\"]}", "routes[0].backend", "give either backend (one target) or backends (a pool), not both"),
            ("{path: /a, backend: \"tcp://h:1\", health_check: {type: websocket}}", "routes[0].health_check.type", "websocket checks need ws:// or wss:// targets"),
            ("{path: /a, backend: \"tcp://h:1\", health_check: {path: /x}}", "routes[0].health_check.path", "only applies to websocket checks"),
        ]
        for (route, key, message) in cases {
            let error = try #require(self.error(Self.listener + "  - \(route)\n"), "\(route)")
            #expect(error.key == key && error.message == message && error.line == 4, "\(error)")
        }
        let listener = try #require(self.error("listeners:\n  - address: \":1\"\n    tls: {certificate: a, key: b, client_certificate: required}\nroutes: []\n"))
        #expect(listener.key == "listeners[0].tls.client_certificate" && listener.message == "needs client_ca")
    }
}
