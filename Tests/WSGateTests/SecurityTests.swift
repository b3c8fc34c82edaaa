import Foundation
import NIOCore
import NIOHTTP1
import Testing
@testable import WSGate

@Suite struct OriginCheckTests {
    func allowed(_ policy: OriginPolicy, _ origin: String?, host: String? = "gw.example:8080", tls: Bool = false) -> Bool {
        OriginCheck.refusal(policy: policy, origin: origin, host: host, clientUsesTLS: tls) == nil
    }

    @Test func sameOriginComparesHostAndPort() {
        #expect(self.allowed(.sameOrigin, "http://gw.example:8080"))
        #expect(self.allowed(.sameOrigin, "http://GW.example:8080"))
        #expect(!self.allowed(.sameOrigin, "http://gw.example:8081"))
        #expect(!self.allowed(.sameOrigin, "http://evil.example:8080"))
        #expect(!self.allowed(.sameOrigin, "null"))
        #expect(self.allowed(.sameOrigin, "https://gw.example", host: "gw.example", tls: true))
        #expect(self.allowed(.sameOrigin, "https://gw.example:443", host: "gw.example", tls: true))
        #expect(!self.allowed(.sameOrigin, "http://gw.example", host: "gw.example", tls: true))  // 80 vs 443
        #expect(self.allowed(.sameOrigin, "http://[::1]:8080", host: "[::1]:8080"))
        #expect(!self.allowed(.sameOrigin, "http://gw.example:8080", host: nil))
    }

    @Test func nonBrowserClientsWithoutOriginPass() {
        #expect(self.allowed(.sameOrigin, nil))
        #expect(self.allowed(.allowList(["https://app.example.com"]), nil))
    }

    @Test func allowListMatchesExactOriginsAndWildcards() {
        let policy = OriginPolicy.allowList(["https://app.example.com", "*.corp.example", "https://*.secure.example"])
        #expect(self.allowed(policy, "https://app.example.com"))
        #expect(self.allowed(policy, "https://app.example.com:443"))
        #expect(!self.allowed(policy, "http://app.example.com"))
        #expect(!self.allowed(policy, "https://app.example.com.evil.net"))
        #expect(!self.allowed(policy, "https://evilapp.example.com"))
        #expect(self.allowed(policy, "http://a.corp.example:3000"))
        #expect(self.allowed(policy, "https://a.b.corp.example"))
        #expect(!self.allowed(policy, "https://corp.example"))
        #expect(!self.allowed(policy, "https://evilcorp.example"))
        #expect(self.allowed(policy, "https://x.secure.example"))
        #expect(!self.allowed(policy, "http://x.secure.example"))
        #expect(!self.allowed(policy, "null"))
        #expect(!self.allowed(policy, "https://user@app.example.com"))
    }

    @Test func anyAllowsEverything() {
        #expect(self.allowed(.any, "https://evil.example"))
        #expect(self.allowed(.any, "null"))
    }
}

@Suite struct TargetPatternTests {
    func pattern(_ text: String) throws -> TargetPattern { try #require(TargetPattern(parsing: text)) }

    @Test func cidrsAndPortRanges() throws {
        let vnc = try self.pattern("127.0.0.1:5900-5999")
        #expect(vnc.matches(host: "127.0.0.1", port: 5900))
        #expect(vnc.matches(host: "127.0.0.1", port: 5999))
        #expect(!vnc.matches(host: "127.0.0.1", port: 6000))
        #expect(!vnc.matches(host: "127.0.0.2", port: 5900))
        let net = try self.pattern("10.0.0.0/8:22")
        #expect(net.matches(host: "10.200.3.4", port: 22))
        #expect(!net.matches(host: "11.0.0.1", port: 22))
        #expect(net.matches(host: "::ffff:10.1.2.3", port: 22))  // IPv4-mapped spelling is the same address
        let v6 = try self.pattern("[fd00::/8]:*")
        #expect(v6.matches(host: "fd12::1", port: 443))
        #expect(!v6.matches(host: "fe80::1", port: 443))
    }

    @Test func namesMatchOnlyNamePatterns() throws {
        let names = try self.pattern("*.internal:22")
        #expect(names.matches(host: "db.internal", port: 22))
        #expect(names.matches(host: "DB.Internal", port: 22))
        #expect(!names.matches(host: "internal", port: 22))
        #expect(!names.matches(host: "db.internal.evil.com", port: 22))
        let loopback = try self.pattern("127.0.0.0/8:*")
        // Numeric spellings a resolver would accept are neither addresses nor names here.
        #expect(!loopback.matches(host: "127.1", port: 80))
        #expect(!loopback.matches(host: "0x7f000001", port: 80))
        #expect(!loopback.matches(host: "localhost", port: 80))
        let exact = try self.pattern("vnc.example:5900")
        #expect(exact.matches(host: "vnc.example", port: 5900))
        #expect(!exact.matches(host: "127.0.0.1", port: 5900))
    }

    @Test(arguments: ["127.0.0.1", "127.0.0.1:0", "127.0.0.1:70000", "10.0.0.0/33:22", "::1:22", "host:9-1", "bad_name:22", "*.:22"])
    func invalidPatternsAreRefused(_ text: String) {
        #expect(TargetPattern(parsing: text) == nil)
    }
}

@Suite struct CredentialExtractorTests {
    func head(uri: String = "/r", _ headers: [(String, String)]) -> HTTPRequestHead {
        HTTPRequestHead(version: .http1_1, method: .GET, uri: uri, headers: HTTPHeaders(headers))
    }

    @Test func everySourceIsFoundAndRemoved() {
        let auth = AuthSettings(method: .bearerTokens(file: "/dev/null"))
        var header = self.head([("Authorization", "Bearer abc"), ("X", "1")])
        #expect(CredentialExtractor.extract(from: &header, auth: auth, targets: nil).credential == .token("abc"))
        #expect(header.headers["authorization"].isEmpty && header.headers["x"] == ["1"])

        var cookie = self.head([("Cookie", "a=1; wsgate_token=t%2B1; b=2")])
        #expect(CredentialExtractor.extract(from: &cookie, auth: auth, targets: nil).credential == .token("t%2B1"))
        #expect(cookie.headers["cookie"] == ["a=1; b=2"])

        var query = self.head(uri: "/r?x=1&token=s%2Fecret&y=2", [])
        #expect(CredentialExtractor.extract(from: &query, auth: auth, targets: nil).credential == .token("s/ecret"))
        #expect(query.uri == "/r?x=1&y=2")

        var subprotocol = self.head([("Sec-WebSocket-Protocol", "chat, bearer.tok.en")])
        #expect(CredentialExtractor.extract(from: &subprotocol, auth: auth, targets: nil).credential == .token("tok.en"))
        #expect(subprotocol.headers["sec-websocket-protocol"] == ["chat"])

        var only = self.head([("Sec-WebSocket-Protocol", "bearer.x")])
        _ = CredentialExtractor.extract(from: &only, auth: auth, targets: nil)
        #expect(only.headers["sec-websocket-protocol"].isEmpty)
    }

    @Test func basicCredentialsDecode() {
        #expect(CredentialExtractor.parseAuthorization("Basic " + Data("ann:pa:ss".utf8).base64EncodedString()) == .basic(user: "ann", password: "pa:ss"))
        #expect(CredentialExtractor.parseAuthorization("Basic !!!") == nil)
        #expect(CredentialExtractor.parseAuthorization("Digest x") == nil)
    }

    @Test func routesWithoutAuthLeaveTheRequestAlone() {
        var head = self.head(uri: "/r?token=1", [("Authorization", "Bearer x"), ("Cookie", "wsgate_token=1")])
        let before = head
        #expect(CredentialExtractor.extract(from: &head, auth: nil, targets: nil).credential == nil)
        #expect(head == before)
    }

    @Test func targetTokenComesFromQueryOrHost() {
        var targets = DynamicTargets()
        targets.tokenFile = "/dev/null"
        var query = self.head(uri: "/vnc?token=abc", [])
        #expect(CredentialExtractor.extract(from: &query, auth: nil, targets: targets).targetToken == "abc")
        #expect(query.uri == "/vnc")
        targets.tokenLocation = .host
        var host = self.head([("Host", "abc.vnc.example:8080")])
        #expect(CredentialExtractor.extract(from: &host, auth: nil, targets: targets).targetToken == "abc")
    }
}

@Suite struct CredentialStoreTests {
    @Test func bearerTokensIgnoreCommentsAndBlankLines() {
        let tokens = BearerTokens(file: "# ops\nalpha\n\n  beta  \n")
        #expect(tokens.count == 2)
        #expect(tokens.contains("alpha") && tokens.contains("beta"))
        #expect(!tokens.contains("alph") && !tokens.contains("") && !tokens.contains("# ops"))
        #expect(BearerTokens(list: "a, b c").count == 3)
    }

    /// A session's lease on its token holds while the file keeps the token, whatever else changes,
    /// and ends when the token leaves; a file that stops parsing keeps the last good contents.
    @Test func aTokenLeaseEndsWhenItsTokenLeavesTheFile() throws {
        let path = NSTemporaryDirectory() + "wsgate-lease-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try "alpha\nbeta\n".write(toFile: path, atomically: true, encoding: .utf8)
        let file = try WatchedFile(path: path, parse: { BearerTokens(file: $0) }, checkInterval: 0)
        #expect(TokenLease(file: file, token: "gamma") == nil)
        var alpha = try #require(TokenLease(file: file, token: "alpha"))
        var beta = try #require(TokenLease(file: file, token: "beta"))
        let bothHeld = alpha.isStillValid() && beta.isStillValid()
        #expect(bothHeld)
        try "beta\n# alpha was here\ndelta\n".write(toFile: path, atomically: true, encoding: .utf8)
        let (alphaHeld, betaHeld) = (alpha.isStillValid(), beta.isStillValid())
        #expect(!alphaHeld && betaHeld)
        try "".write(toFile: path, atomically: true, encoding: .utf8)
        let betaHeldAfterEmptying = beta.isStillValid()
        #expect(!betaHeldAfterEmptying)
    }

    @Test func htpasswdChecksBcryptShaCryptAndSha1() throws {
        // bcrypt cost 4 and SHA-512-crypt made with Python's crypt module; {SHA} as `htpasswd -s` writes it.
        let file = try Htpasswd(file: """
            ann:$2b$04$NkwfxPIKKAo1SA/forXfsu7lVUXLX/yKBi0IJ5RiaJo8cM.FThj7y
            bob:$6$KC0SGvEnPnFNWE/Y$KZvQtF4Tjf3r5GK9cQiLX325Eus12R9dqqq4a4nGgDgLm2eoNnl3hUlL4Gxzr08yEQEkM1/5GjrJKzlHAI.aL1
            cat:{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=
            """)
        #expect(file.verify(user: "ann", password: "secret"))
        #expect(!file.verify(user: "ann", password: "Secret"))
        #expect(file.verify(user: "bob", password: "secret"))
        #expect(!file.verify(user: "bob", password: "secre"))
        #expect(file.verify(user: "cat", password: "secret"))
        #expect(!file.verify(user: "cat", password: "secret2"))
        #expect(!file.verify(user: "dan", password: "secret"))
    }

    @Test func weakHtpasswdHashesAreRefusedWhenRead() {
        #expect(throws: Htpasswd.ParseError.self) { try Htpasswd(file: "ann:$apr1$abc$def") }
        #expect(throws: Htpasswd.ParseError.self) { try Htpasswd(file: "ann:plaintext") }
    }

    @Test func targetTokenFileParses() throws {
        let map = try TargetTokenFile.parse("# vnc\nabc: 127.0.0.1:5901\nxyz: ws://10.0.0.2:9000/path\n")
        #expect(map == ["abc": "127.0.0.1:5901", "xyz": "ws://10.0.0.2:9000/path"])
        #expect(TargetTokenFile.backend("127.0.0.1:5901") == .tcp(host: "127.0.0.1", port: 5901))
        #expect(throws: TargetTokenFile.ParseError.self) { try TargetTokenFile.parse("no-colon-here") }
    }
}

@Suite struct ClientLimiterTests {
    let a = try! SocketAddress(ipAddress: "192.0.2.1", port: 1000)
    let b = try! SocketAddress(ipAddress: "192.0.2.2", port: 1000)

    @Test func connectionLimitsCountTotalAndPerIP() {
        var limits = ConnectionLimits()
        limits.maxConnections = 3
        limits.maxConnectionsPerIP = 2
        let limiter = ClientLimiter(limits: limits, fileDescriptorLimit: nil)
        #expect(limiter.open(self.a) == nil)
        #expect(limiter.open(self.a) == nil)
        #expect(limiter.open(self.a) == .tooManyConnectionsFromIP(limit: 2))
        #expect(limiter.open(self.b) == nil)
        #expect(limiter.open(self.b) == .tooManyConnections(limit: 3))
        limiter.close(self.a)
        #expect(limiter.open(self.b) == nil)
        #expect(limiter.openConnections == 3)
    }

    /// A slot shared by a connection and its backend connect comes back once both let go, in
    /// either order, and only once however often an owner lets go.
    @Test func aSlotIsGivenBackWhenItsLastOwnerLetsGo() throws {
        var limits = ConnectionLimits()
        limits.maxConnections = 1
        let limiter = ClientLimiter(limits: limits, fileDescriptorLimit: nil)
        let slot = try ClientSlot.take(limiter, for: self.a).get()
        #expect(throws: ClientLimiter.Refusal.tooManyConnections(limit: 1)) { try ClientSlot.take(limiter, for: self.b).get() }
        slot.addOwner()  // the connect
        slot.release()  // the client leaves
        #expect(limiter.openConnections == 1)
        #expect(!slot.isReleased)
        slot.release()  // the connect completes
        #expect(slot.isReleased)
        #expect(limiter.openConnections == 0)
        slot.release()
        #expect(limiter.openConnections == 0)
        let next = try ClientSlot.take(limiter, for: self.b).get()
        next.release()
        #expect(limiter.openConnections == 0)
    }

    @Test func handshakeRateIsATokenBucketPerIP() {
        var limits = ConnectionLimits()
        limits.handshakeRatePerIP = 2  // burst 4
        let limiter = ClientLimiter(limits: limits, fileDescriptorLimit: nil)
        let start = NIODeadline.now()
        for _ in 0..<4 { #expect(limiter.takeHandshake(self.a, now: start) == nil) }
        #expect(limiter.takeHandshake(self.a, now: start) == .handshakeRate(retryAfterSeconds: 1))
        #expect(limiter.takeHandshake(self.b, now: start) == nil)  // other IPs unaffected
        #expect(limiter.takeHandshake(self.a, now: start + .milliseconds(500)) == nil)  // one token back
        #expect(limiter.takeHandshake(self.a, now: start + .milliseconds(500)) != nil)
    }

    @Test func defaultMaxConnectionsFollowsTheFileLimit() {
        #expect(ClientLimiter(limits: ConnectionLimits(), fileDescriptorLimit: 20_000).maxConnections == 9_968)
        #expect(ClientLimiter(limits: ConnectionLimits(), fileDescriptorLimit: 100).maxConnections == 64)
    }
}

@Suite struct SecurityConfigurationTests {
    func file(_ contents: String) throws -> String {
        let path = NSTemporaryDirectory() + "wsgate-\(UUID().uuidString)"
        try contents.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static func remove(_ paths: String...) {
        for path in paths { try? FileManager.default.removeItem(atPath: path) }
    }

    @Test func fullSecurityConfigurationParses() throws {
        let tokens = try self.file("t1\n")
        let map = try self.file("abc: 127.0.0.1:5901\n")
        defer { Self.remove(tokens, map) }
        let yaml = """
            limits: {max_connections: 5000, max_connections_per_ip: 50, handshake_rate_per_ip: 10/s, max_header_count: 64}
            listeners: [{address: "127.0.0.1:0"}]
            routes:
              - path: /a
                backend: tcp://127.0.0.1:1
                origins: ["https://app.example.com", "*.example.com"]
                auth: {bearer_tokens_file: \(tokens), token_sources: [header, subprotocol]}
                limits: {max_frame_bytes: 1MiB}
              - path: /vnc
                origins: any
                targets: {token_file: \(map), allowed: ["127.0.0.1:5900-5999"]}
            """
        let config = try ConfigurationLoader.parse(yaml: yaml)
        #expect(config.server.limits.maxConnections == 5000)
        #expect(config.server.limits.maxConnectionsPerIP == 50)
        #expect(config.server.limits.handshakeRatePerIP == 10)
        #expect(config.server.limits.maxHeaderCount == 64)
        let a = config.routes[0]
        #expect(a.origins == .allowList(["https://app.example.com", "*.example.com"]))
        #expect(a.auth?.method == .bearerTokens(file: tokens))
        #expect(a.auth?.sources.header == true && a.auth?.sources.subprotocolPrefix == "bearer." && a.auth?.sources.cookie == nil && a.auth?.sources.queryParameter == nil)
        #expect(a.limits.maxFrameBytes == 1 << 20)
        let vnc = config.routes[1]
        #expect(vnc.origins == .any)
        #expect(vnc.targets?.tokenFile == map)
        #expect(vnc.targets?.allowed.map(\.description) == ["127.0.0.1:5900-5999"])
        #expect(vnc.backend == .dynamic)
        #expect(config.routes.allSatisfy { $0.origins != .sameOrigin })
        #expect(try ConfigurationLoader.parse(yaml: "listeners: [{address: ':0'}]\nroutes: [{path: /, backend: 'tcp://h:1'}]").routes[0].origins == .sameOrigin)
    }

    @Test(arguments: [
        ("routes: [{path: /, origins: [], backend: 'tcp://h:1'}]", "routes[0].origins"),
        ("routes: [{path: /, origins: ['ftp://x'], backend: 'tcp://h:1'}]", "routes[0].origins[0]"),
        ("routes: [{path: /, auth: {}, backend: 'tcp://h:1'}]", "routes[0].auth"),
        ("routes: [{path: /, auth: {bearer_tokens_file: /nonexistent}, backend: 'tcp://h:1'}]", "routes[0].auth.bearer_tokens_file"),
        ("routes: [{path: /, targets: {token_file: EMPTY}}]", "routes[0].targets.allowed"),
        ("routes: [{path: /, targets: {token_file: EMPTY, allowed: ['10.0.0.0/8']}}]", "routes[0].targets.allowed[0]"),
        ("routes: [{path: /, targets: {from_jwt: true, allowed: ['10.0.0.0/8:22']}}]", "routes[0].targets.from_jwt"),
        ("routes: [{path: /, backend: 'tcp://h:1', targets: {token_file: EMPTY, allowed: ['h:1']}}]", "routes[0].backend"),
        ("limits: {handshake_rate_per_ip: fast}\nroutes: [{path: /, backend: 'tcp://h:1'}]", "limits.handshake_rate_per_ip"),
        ("routes: [{path: /, backend: 'tcp://h:1', backend_identity: {}}]", "routes[0].backend_identity"),
        ("routes: [{path: /, backend: 'ws://h:1', backend_identity: {header: 'X User'}}]", "routes[0].backend_identity.header"),
        ("routes: [{path: /, backend: 'ws://h:1', backend_identity: {header: Host}}]", "routes[0].backend_identity"),
        ("routes: [{path: /, backend: 'ws://h:1', backend_identity: {claims: {sub: X-WSGate-User}}}]", "routes[0].backend_identity"),
        ("routes: [{path: /, backend: 'ws://h:1', backend_identity: {claims: [sub]}}]", "routes[0].backend_identity.claims"),
        ("routes: [{path: /, backend: 'ws://h:1', limits: {max_session_duration: forever}}]", "routes[0].limits.max_session_duration"),
        ("admin: {address: '127.0.0.1:0', token_file: EMPTY}\nroutes: [{path: /, backend: 'tcp://h:1'}]", "admin.token_file"),
        ("routes: [{path: /, backend: 'tcp://h:1', limits: {max_sessions_per_user: 1}}]", "routes[0].limits.max_sessions_per_user"),
        ("routes: [{path: /, backend: 'tcp://h:1', limits: {max_sessions_per_target: 0}}]", "routes[0].limits.max_sessions_per_target"),
        ("routes: [{path: /, backend: 'tcp://h:1', limits: {on_limit: kick}}]", "routes[0].limits.on_limit"),
        ("routes: [{path: /, backend: 'tcp://h:1', limits: {messages_per_second: 0}}]", "routes[0].limits.messages_per_second"),
        ("routes: [{path: /, backend: 'wss://h:1', backend_tls: {certificate: EMPTY}}]", "routes[0].backend_tls"),
        ("routes: [{path: /, backend: 'tcp://h:1', limits: {bytes_per_second: lots}}]", "routes[0].limits.bytes_per_second"),
    ])
    func badSecuritySettingsAreNamed(_ routes: String, _ key: String) throws {
        let empty = try self.file("")
        defer { Self.remove(empty) }
        let yaml = "listeners: [{address: ':0'}]\n" + routes.replacingOccurrences(of: "EMPTY", with: empty)
        let error = try #require(throws: ConfigurationError.self) { try ConfigurationLoader.parse(yaml: yaml) }
        #expect(error.key == key, "\(error)")
    }

    @Test func backendIdentityAndSessionLimitsParse() throws {
        let yaml = """
            listeners: [{address: ':0'}]
            routes:
              - path: /
                backend: 'ws://h:1'
                backend_identity: {header: X-User, claims: {email: X-Email, sub: X-Sub}}
                limits: {max_session_duration: 90m, max_sessions_per_target: 1, on_limit: replace_oldest, messages_per_second: 20, bytes_per_second: 64KiB}
              - {path: /quiet, backend: 'ws://h:1', backend_identity: {header: off}}
            """
        let config = try ConfigurationLoader.parse(yaml: yaml)
        let identity = try #require(config.routes[0].backendIdentity)
        #expect(identity.userHeader == "X-User")
        #expect(identity.claimHeaders.map(\.claim) == ["email", "sub"])
        #expect(identity.headerNames == ["X-User", "X-Email", "X-Sub"])
        #expect(config.routes[0].limits.maxSessionDuration == .minutes(90))
        #expect(config.routes[1].backendIdentity?.userHeader == nil)
        #expect(config.routes[1].limits.maxSessionDuration == nil)
        #expect(config.routes[0].limits.maxSessionsPerTarget == 1 && config.routes[0].limits.onLimit == .replaceOldest)
        #expect(config.routes[1].limits.maxSessionsPerTarget == nil && config.routes[1].limits.onLimit == .reject)
        #expect(config.routes[0].limits.rates == .init(messagesPerSecond: 20, bytesPerSecond: 65_536))
        #expect(!config.routes[1].limits.rates.isLimited)
        #expect(throws: HTTPRefusal.self) { try identity.headers(user: "ann\r\nX-Admin: yes", claims: [:]) }
        let headers = try identity.headers(user: "ann", claims: ["email": "ann@example.com", "other": "x"])
        #expect(headers.map(\.name) == ["X-User", "X-Email"] && headers.map(\.value) == ["ann", "ann@example.com"])
    }

    @Test func weakHtpasswdFileFailsTheConfiguration() throws {
        let file = try self.file("ann:$apr1$x$y\n")
        defer { Self.remove(file) }
        let yaml = "listeners: [{address: ':0'}]\nroutes: [{path: /, backend: 'tcp://h:1', auth: {basic_htpasswd: \(file)}}]"
        let error = try #require(throws: ConfigurationError.self) { try ConfigurationLoader.parse(yaml: yaml) }
        #expect(error.message.contains("htpasswd -B"))
    }
}

@Suite struct SecurityExampleTests {
    /// examples/security.yaml stays valid: its /etc/wsgate files are stood in for by temporary ones.
    @Test func securityExampleParses() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let text = try String(contentsOf: root.appendingPathComponent("examples/security.yaml"), encoding: .utf8)
        let directory = NSTemporaryDirectory() + "wsgate-example-\(UUID().uuidString)/"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let contents = [
            "admin.htpasswd": "ops:$2b$04$NkwfxPIKKAo1SA/forXfsu7lVUXLX/yKBi0IJ5RiaJo8cM.FThj7y\n",
            "vnc.targets": "desk1: 10.1.0.5:5901\n",
            "vnc-users.tokens": "t1\n",
            "admin-api.tokens": "ops-secret\n",
        ]
        for name in ["cert.pem", "key.pem", "clients-ca.pem", "jwt-es256.pem", "admin.htpasswd", "vnc.targets", "vnc-users.tokens", "admin-api.tokens"] {
            try (contents[name] ?? "x").write(toFile: directory + name, atomically: true, encoding: .utf8)
        }
        let config = try ConfigurationLoader.parse(yaml: text.replacingOccurrences(of: "/etc/wsgate/", with: directory))
        #expect(config.routes.map(\.path) == ["/term", "/vnc", "/admin"])
        #expect(config.listeners[0].tls?.clientCertificateRequired == false)
        #expect(config.listeners[1].proxyProtocolFrom?.map(\.description) == ["10.0.0.0/8"])
        #expect(config.routes[0].backendProxyProtocol == .v2)
        #expect(config.routes[1].targets?.queryParameter == "target")
        #expect(config.routes[2].clientSubjects == ["CN=ops-*"])
        #expect(config.routes.flatMap(SecurityWarnings.warnings).isEmpty)
        #expect(config.routes[0].limits.maxSessionDuration == .hours(8))
        #expect(config.routes[2].backendIdentity?.userHeader == "X-Operator")
        let admin = try #require(config.admin)
        #expect(admin.tokenFile == directory + "admin-api.tokens")
        #expect(SecurityWarnings.warnings(for: admin).isEmpty)
        var open = admin
        open.tokenFile = nil
        #expect(SecurityWarnings.warnings(for: open).count == 1, "a network admin listener without a token file is risky")
    }
}

@Suite struct CommandLineOriginTests {
    @Test func allowOriginFlagSetsEveryRoutesPolicy() throws {
        func policy(_ origins: [String]) throws -> OriginPolicy {
            try CommandLineConfiguration.make(listen: [":0"], routes: ["/a=tcp://h:1", "/b=ws://h:2/"], origins: origins).routes[1].origins
        }
        #expect(try policy([]) == .sameOrigin)
        #expect(try policy(["same-origin"]) == .sameOrigin)
        #expect(try policy(["any"]) == .any)
        #expect(try policy(["https://app.example.com", "*.example.org"]) == .allowList(["https://app.example.com", "*.example.org"]))
        #expect(throws: ConfigurationError.self) { try policy(["app.example.com"]) }
    }
}
