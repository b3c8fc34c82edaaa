import DemoBackends
import Foundation
import JWTKit
import NIOCore
import NIOPosix
import Testing
@testable import WSGate

/// Every refusal path of the security layer, over real sockets: the client gets the documented
/// status, and nothing is forwarded (or leaks) to the backend.
@Suite(.timeLimit(.minutes(2))) struct SecurityTests {
    static func file(_ contents: String) throws -> String {
        let path = Scratch.path("wsgate-test").path
        try contents.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Sends a handshake and returns the status (101 for success) and the response headers.
    static func handshake(_ fixture: GatewayFixture, _ path: String, from source: String? = nil, headers: [String] = []) async throws -> (Int, [String: String], TestClient) {
        let client = try await TestClient.connect(port: fixture.port, from: source, group: fixture.group)
        // A connection over a limit is answered (and half-closed) before the request is even sent.
        try? await client.send(TestClient.handshake(path: path, extra: headers))
        // 30 s, not the usual 10: the in-process gateway checks JWTs on the Swift concurrency pool,
        // which it shares with every test running beside this one; under a CPU hog a JWT
        // handshake's answer has waited over 10 s for it. A gateway process has that pool to itself.
        let (status, responseHeaders) = try await client.readHead(timeout: .seconds(30))
        return (status, responseHeaders, client)
    }

    static func status(_ fixture: GatewayFixture, _ path: String, headers: [String] = []) async throws -> Int {
        let (status, _, client) = try await self.handshake(fixture, path, headers: headers)
        await client.close()
        return status
    }

    /// An HS256 setup: the secret in a file the route's settings name, and a signer of tokens they accept.
    static func hs256(_ filler: Character) async throws -> (settings: JWTSettings, signer: JWTKeyCollection) {
        let secret = String(repeating: filler, count: 40)
        var settings = JWTSettings()
        settings.hmacSecretFile = try Self.file(secret)
        let signer = JWTKeyCollection()
        await signer.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        return (settings, signer)
    }

    static func wsRoute(_ path: String, _ port: Int) -> RouteConfiguration {
        RouteConfiguration(path: path, backend: .webSocket(host: "127.0.0.1", port: port, path: nil, query: nil))
    }

    // MARK: Origin

    @Test func sameOriginIsTheDefault() async throws {
        let fixture = try await GatewayFixture.start { ws, _ in [Self.wsRoute("/ws", ws)] }
        defer { Task { await fixture.stop() } }
        let (status, _, client) = try await Self.handshake(fixture, "/ws", headers: ["Origin: https://evil.example"])
        #expect(status == 403)
        try await client.waitForEOF()
        #expect(try await Self.status(fixture, "/ws", headers: ["Origin: http://gateway.test"]) == 101)
        #expect(try await Self.status(fixture, "/ws") == 101)  // no Origin: not a browser
    }

    @Test func allowListAdmitsListedOriginsOnly() async throws {
        let fixture = try await GatewayFixture.start { ws, _ in
            var route = Self.wsRoute("/ws", ws)
            route.origins = .allowList(["https://app.example.com", "*.corp.example"])
            return [route]
        }
        defer { Task { await fixture.stop() } }
        #expect(try await Self.status(fixture, "/ws", headers: ["Origin: https://app.example.com"]) == 101)
        #expect(try await Self.status(fixture, "/ws", headers: ["Origin: https://x.corp.example:8443"]) == 101)
        #expect(try await Self.status(fixture, "/ws", headers: ["Origin: https://app.example.com.evil.net"]) == 403)
        #expect(try await Self.status(fixture, "/ws", headers: ["Origin: http://gateway.test"]) == 403)
    }

    // MARK: Bearer tokens

    @Test func bearerTokensAreAcceptedFromEverySourceAndNeverForwarded() async throws {
        let tokens = try Self.file("# team\ns3cret-token\n")
        let fixture = try await GatewayFixture.start { ws, _ in
            var route = Self.wsRoute("/ws", ws)
            route.auth = AuthSettings(method: .bearerTokens(file: tokens))
            return [route]
        }
        defer { Task { await fixture.stop() } }

        let (missing, challenge, client) = try await Self.handshake(fixture, "/ws/inspect")
        #expect(missing == 401)
        #expect(challenge["www-authenticate"] == "Bearer realm=\"wsgate\"")
        await client.close()
        #expect(try await Self.status(fixture, "/ws/inspect", headers: ["Authorization: Bearer wrong"]) == 401)
        #expect(try await Self.status(fixture, "/ws/inspect?token=s3cret-toke") == 401)

        let ways: [(String, [String])] = [
            ("/ws/inspect", ["Authorization: Bearer s3cret-token"]),
            ("/ws/inspect", ["Cookie: theme=dark; wsgate_token=s3cret-token"]),
            ("/ws/inspect?room=1&token=s3cret-token", []),
            ("/ws/inspect", ["Sec-WebSocket-Protocol: bearer.s3cret-token, chat"]),
        ]
        for (path, headers) in ways {
            let (status, responseHeaders, client) = try await Self.handshake(fixture, path, headers: headers)
            #expect(status == 101, "\(headers)")
            let greeting = try await client.readMessage().text
            #expect(!greeting.contains("s3cret"), "token forwarded: \(greeting)")
            #expect(!greeting.lowercased().contains("authorization"))
            if headers.first?.hasPrefix("Cookie") == true { #expect(greeting.contains("Cookie: theme=dark\n")) }
            if path.contains("room") { #expect(greeting.hasPrefix("GET /ws/inspect?room=1\n")) }
            if headers.first?.hasPrefix("Sec-WebSocket-Protocol") == true {
                #expect(responseHeaders["sec-websocket-protocol"] == "chat")
                #expect(greeting.contains("Sec-WebSocket-Protocol: chat\n"))
            }
            await client.close()
        }
    }

    @Test func tokensFileIsReReadWhenItChanges() async throws {
        let tokens = try Self.file("old\n")
        let fixture = try await GatewayFixture.start { ws, _ in
            var route = Self.wsRoute("/ws", ws)
            route.auth = AuthSettings(method: .bearerTokens(file: tokens))
            return [route]
        }
        defer { Task { await fixture.stop() } }
        #expect(try await Self.status(fixture, "/ws?token=old") == 101)
        try "new\n".write(toFile: tokens, atomically: true, encoding: .utf8)
        try await Task.sleep(nanoseconds: 1_200_000_000)  // files are checked at most once a second
        #expect(try await Self.status(fixture, "/ws?token=new") == 101)
        #expect(try await Self.status(fixture, "/ws?token=old") == 401)
    }

    // MARK: Basic

    @Test func basicAuthAgainstHtpasswd() async throws {
        let htpasswd = try Self.file("ann:$2b$04$NkwfxPIKKAo1SA/forXfsu7lVUXLX/yKBi0IJ5RiaJo8cM.FThj7y\n")
        let fixture = try await GatewayFixture.start { _, tcp in
            var route = RouteConfiguration(path: "/tcp", backend: .tcp(host: "127.0.0.1", port: tcp))
            route.auth = AuthSettings(method: .basic(htpasswdFile: htpasswd))
            return [route]
        }
        defer { Task { await fixture.stop() } }
        func basic(_ user: String, _ password: String) -> String { "Authorization: Basic " + Data("\(user):\(password)".utf8).base64EncodedString() }
        let (status, headers, client) = try await Self.handshake(fixture, "/tcp", headers: [basic("ann", "wrong")])
        #expect(status == 401)
        #expect(headers["www-authenticate"]?.hasPrefix("Basic realm=\"wsgate\"") == true)
        await client.close()
        #expect(try await Self.status(fixture, "/tcp", headers: [basic("bob", "secret")]) == 401)
        #expect(try await Self.status(fixture, "/tcp", headers: ["Authorization: Bearer secret"]) == 401)
        let (ok, _, session) = try await Self.handshake(fixture, "/tcp", headers: [basic("ann", "secret")])
        #expect(ok == 101)
        try await session.sendFrame(2, [1, 2, 3])
        #expect(try await session.readMessage().payload == [1, 2, 3])
        await session.close()
    }

    // MARK: JWT

    struct TestClaims: JWTPayload {
        var sub: SubjectClaim
        var exp: ExpirationClaim?
        var aud: AudienceClaim?
        var routes: [String]?
        var target: String?
        func verify(using algorithm: some JWTAlgorithm) async throws {}
    }

    static func claims(exp: TimeInterval? = 300, aud: String? = "wsgate", routes: [String]? = nil, target: String? = nil) -> TestClaims {
        TestClaims(sub: "ann", exp: exp.map { ExpirationClaim(value: Date().addingTimeInterval($0)) }, aud: aud.map { AudienceClaim(value: [$0]) }, routes: routes, target: target)
    }

    @Test func jwtSignatureExpiryAudienceAndRouteClaim() async throws {
        let secret = String(repeating: "k", count: 40)
        let secretFile = try Self.file(secret + "\n")
        let signer = JWTKeyCollection()
        await signer.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        let impostor = JWTKeyCollection()
        await impostor.add(hmac: HMACKey(from: String(repeating: "x", count: 40)), digestAlgorithm: .sha256)

        let fixture = try await GatewayFixture.start { ws, _ in
            var settings = JWTSettings()
            settings.hmacSecretFile = secretFile
            settings.audiences = ["wsgate"]
            settings.leeway = .zero
            var route = Self.wsRoute("/ws", ws)
            route.auth = AuthSettings(method: .jwt(settings))
            return [route]
        }
        defer { Task { await fixture.stop() } }
        let good = try await signer.sign(Self.claims())
        #expect(try await Self.status(fixture, "/ws", headers: ["Sec-WebSocket-Protocol: bearer.\(good)"]) == 101)
        #expect(try await Self.status(fixture, "/ws?token=\(good)") == 101)
        #expect(try await Self.status(fixture, "/ws?token=\(try await impostor.sign(Self.claims()))") == 401)
        #expect(try await Self.status(fixture, "/ws?token=\(try await signer.sign(Self.claims(exp: -5)))") == 401)
        #expect(try await Self.status(fixture, "/ws?token=\(try await signer.sign(Self.claims(exp: nil)))") == 401)
        #expect(try await Self.status(fixture, "/ws?token=\(try await signer.sign(Self.claims(aud: "other")))") == 401)
        #expect(try await Self.status(fixture, "/ws?token=\(try await signer.sign(Self.claims(routes: ["/admin"])))") == 403)
        #expect(try await Self.status(fixture, "/ws?token=\(try await signer.sign(Self.claims(routes: ["/ws"])))") == 101)
        // alg "none" with a valid-looking payload is refused.
        let unsigned = good.split(separator: ".").prefix(2).joined(separator: ".").replacingOccurrences(of: good.split(separator: ".")[0], with: "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0") + "."
        #expect(try await Self.status(fixture, "/ws?token=\(unsigned)") == 401)
    }

    /// A rotated secret is picked up by a reload of an unchanged table; a reload whose key file
    /// went missing is refused and the old key keeps working.
    @Test func reloadReadsARotatedJWTSecret() async throws {
        let (old, new) = (String(repeating: "o", count: 40), String(repeating: "n", count: 40))
        let secretFile = try Self.file(old)
        let oldSigner = JWTKeyCollection(), newSigner = JWTKeyCollection()
        await oldSigner.add(hmac: HMACKey(from: old), digestAlgorithm: .sha256)
        await newSigner.add(hmac: HMACKey(from: new), digestAlgorithm: .sha256)
        let fixture = try await GatewayFixture.start { ws, _ in
            var settings = JWTSettings()
            settings.hmacSecretFile = secretFile
            var route = Self.wsRoute("/ws", ws)
            route.auth = AuthSettings(method: .jwt(settings))
            return [route]
        }
        defer { Task { await fixture.stop() } }
        let (oldToken, newToken) = (try await oldSigner.sign(Self.claims(aud: nil)), try await newSigner.sign(Self.claims(aud: nil)))
        #expect(try await Self.status(fixture, "/ws?token=\(oldToken)") == 101)
        try new.write(toFile: secretFile, atomically: true, encoding: .utf8)
        #expect(try await Self.status(fixture, "/ws?token=\(newToken)") == 401, "keys are read at (re)load, not per handshake")
        guard case .applied = await fixture.gateway.reload(fixture.gateway.configuration) else { Issue.record("reload refused"); return }
        #expect(try await Self.status(fixture, "/ws?token=\(newToken)") == 101)
        #expect(try await Self.status(fixture, "/ws?token=\(oldToken)") == 401)
        try FileManager.default.removeItem(atPath: secretFile)
        guard case .rejected = await fixture.gateway.reload(fixture.gateway.configuration) else { Issue.record("a reload without its key file was applied"); return }
        #expect(try await Self.status(fixture, "/ws?token=\(newToken)") == 101)
    }

    @Test func jwtWithPublicKeyOverHTTP2() async throws {
        let key = ES256PrivateKey()
        let publicKey = try Self.file(key.publicKey.pemRepresentation)
        let signer = JWTKeyCollection()
        await signer.add(ecdsa: key)
        let fixture = try await GatewayFixture.start { ws, _ in
            var settings = JWTSettings()
            settings.publicKeyFiles = [publicKey]
            var route = Self.wsRoute("/ws", ws)
            route.auth = AuthSettings(method: .jwt(settings))
            return [route]
        }
        defer { Task { await fixture.stop() } }
        let token = try await signer.sign(Self.claims())
        #expect(try await Self.status(fixture, "/ws", headers: ["Authorization: Bearer \(token)"]) == 101)
        let run = try await Peers.run(try Peers.python, [Peers.script("h2_websocket.py"), "127.0.0.1", String(fixture.port), "--header", "authorization:Bearer \(token)", "/ws"])
        #expect(streamResults(run.output)["/ws"]?.echo == "hello /ws", "\(run.output)")
        let refused = try await Peers.run(try Peers.python, [Peers.script("h2_websocket.py"), "127.0.0.1", String(fixture.port), "/ws"])
        #expect(streamResults(refused.output)["/ws"]?.status == "401", "\(refused.output)")
    }

    // MARK: Dynamic targets

    @Test func tokenTargetsStayInsideTheAllowList() async throws {
        let fixture = try await GatewayFixture.start { _, tcp in
            let map = try Self.file("""
                vnc1: 127.0.0.1:\(tcp)
                outside: 127.0.0.2:\(tcp)
                wrongport: 127.0.0.1:1
                byname: localhost:\(tcp)
                numeric: 127.1:\(tcp)
                """)
            var targets = DynamicTargets()
            targets.tokenFile = map
            targets.allowed = [TargetPattern(parsing: "127.0.0.1:\(tcp)")!]
            var route = RouteConfiguration(path: "/vnc", backend: .dynamic)
            route.targets = targets
            return [route]
        }
        defer { Task { await fixture.stop() } }
        let (ok, _, client) = try await Self.handshake(fixture, "/vnc?token=vnc1")
        #expect(ok == 101)
        try await client.sendFrame(2, [9, 8, 7])
        #expect(try await client.readMessage().payload == [9, 8, 7])
        await client.close()
        for token in ["outside", "wrongport", "byname", "numeric", "unknown", ""] {
            #expect(try await Self.status(fixture, "/vnc?token=\(token)") == 403, "\(token)")
        }
        #expect(try await Self.status(fixture, "/vnc") == 403)
    }

    /// websockify's token sources: a directory of token files (a file added later is picked up,
    /// hidden files are not), `unix_socket:` targets confined to `unix_directory` whatever the
    /// spelling (`..`, a symbolic link, a relative path), and a JWT's `host`/`port` claims.
    @Test func websockifyTokenDirectoriesUnixSocketsAndJWTHostPort() async throws {
        let tokens = Scratch.path("wsgate-tokens")
        let sockets = Scratch.path("wsgate-sockets")
        let outside = Scratch.path("wsgate-outside")
        for directory in [tokens, sockets, outside] { try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true) }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { group.shutdownGracefully { _ in } }
        let console = try await TCPServices.startEcho(unixPath: sockets.appendingPathComponent("console.sock").path, group: group)
        defer { console.close(promise: nil) }
        let escape = try await TCPServices.startEcho(unixPath: outside.appendingPathComponent("escape.sock").path, group: group)
        defer { escape.close(promise: nil) }
        try FileManager.default.createSymbolicLink(atPath: sockets.appendingPathComponent("link.sock").path, withDestinationPath: outside.appendingPathComponent("escape.sock").path)
        let (settings, signer) = try await Self.hs256("w")
        let fixture = try await GatewayFixture.start { ws, tcp in
            try "vnc1: 127.0.0.1:\(tcp)\n".write(to: tokens.appendingPathComponent("tcp"), atomically: true, encoding: .utf8)
            try """
                console: unix_socket:\(sockets.path)/console.sock
                dotdot: unix_socket:\(sockets.path)/../\(outside.lastPathComponent)/escape.sock
                linked: unix_socket:\(sockets.path)/link.sock
                relative: unix_socket:console.sock
                """.write(to: tokens.appendingPathComponent("unix"), atomically: true, encoding: .utf8)
            try "hidden: 127.0.0.1:\(tcp)\n".write(to: tokens.appendingPathComponent(".hidden"), atomically: true, encoding: .utf8)
            var targets = DynamicTargets()
            targets.tokenFile = tokens.path
            targets.unixDirectory = sockets.path
            targets.allowed = [TargetPattern(parsing: "127.0.0.1:\(tcp)")!]
            var route = RouteConfiguration(path: "/vnc", backend: .dynamic)
            route.targets = targets
            var withoutUnix = route
            withoutUnix.path = "/tcp-only"
            withoutUnix.targets?.unixDirectory = nil
            var byJWT = RouteConfiguration(path: "/jwt", backend: .dynamic)
            byJWT.auth = AuthSettings(method: .jwt(settings))
            byJWT.targets = DynamicTargets()
            byJWT.targets?.fromJWT = true
            byJWT.targets?.allowed = [TargetPattern(parsing: "127.0.0.1:\(tcp)")!]
            return [route, withoutUnix, byJWT]
        }
        defer { Task { await fixture.stop() } }
        for token in ["vnc1", "console"] {
            let (status, _, client) = try await Self.handshake(fixture, "/vnc?token=\(token)")
            #expect(status == 101, "\(token)")
            try await client.sendFrame(2, Array(token.utf8))
            #expect(try await client.readMessage().payload == Array(token.utf8), "\(token)")
            await client.close()
        }
        for token in ["dotdot", "linked", "relative", "hidden", "late"] {
            #expect(try await Self.status(fixture, "/vnc?token=\(token)") == 403, "\(token)")
        }
        // websockify's fallback: the token in a cookie of the same name.
        #expect(try await Self.status(fixture, "/vnc", headers: ["Cookie: theme=dark; token=vnc1"]) == 101)
        // Or a subprotocol entry, which is not chosen as the subprotocol.
        let (offered, headers, client) = try await Self.handshake(fixture, "/vnc", headers: ["Sec-WebSocket-Protocol: token.console, binary"])
        #expect(offered == 101 && headers["sec-websocket-protocol"] == "binary", "\(headers)")
        await client.close()
        #expect(try await Self.status(fixture, "/tcp-only?token=console") == 403)
        #expect(try await Self.status(fixture, "/tcp-only?token=vnc1") == 101)

        // A file added to the directory is read within the watch interval (a second).
        try "late: 127.0.0.1:\(fixture.tcpEchoPort)\n".write(to: tokens.appendingPathComponent("added"), atomically: true, encoding: .utf8)
        var late = 403
        let deadline = NIODeadline.now() + .seconds(10)
        while late != 101 && NIODeadline.now() < deadline {
            try await Task.sleep(nanoseconds: 200_000_000)
            late = try await Self.status(fixture, "/vnc?token=late")
        }
        #expect(late == 101)

        struct HostPort: JWTPayload {
            var sub: SubjectClaim
            var exp: ExpirationClaim
            var host: String
            var port: Int
            func verify(using algorithm: some JWTAlgorithm) async throws {}
        }
        let expiry = ExpirationClaim(value: Date().addingTimeInterval(300))
        let allowed = try await signer.sign(HostPort(sub: "ann", exp: expiry, host: "127.0.0.1", port: fixture.tcpEchoPort))
        #expect(try await Self.status(fixture, "/jwt?token=\(allowed)") == 101)
        let elsewhere = try await signer.sign(HostPort(sub: "ann", exp: expiry, host: "127.0.0.1", port: 1))
        #expect(try await Self.status(fixture, "/jwt?token=\(elsewhere)") == 403)
    }

    /// `auth.jwt.jwks_url`: keys fetched from the provider at start; a token signed with a key the
    /// provider added later (a rotation) is accepted without SIGHUP, fetched once on its unknown
    /// `kid`; made-up key ids do not make the gateway fetch again and again; `alg: none` and an
    /// HS256 token keyed with the public key (algorithm confusion) are 401.
    @Test func jwksKeysRotateWithoutReloadAndForgeriesAreRefused() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { group.shutdownGracefully { _ in } }
        let provider = try await StubAuthService.start(group: group)
        defer { provider.stop() }
        let first = ES256PrivateKey()
        let second = ES256PrivateKey()
        func jwk(_ key: ES256PrivateKey, _ kid: String) -> String {
            let point = key.parameters
            return #"{"kty": "EC", "crv": "P-256", "x": "\#(point?.x ?? "")", "y": "\#(point?.y ?? "")", "kid": "\#(kid)", "alg": "ES256", "use": "sig"}"#
        }
        provider.jwks.withLockedValue { $0 = #"{"keys": [\#(jwk(first, "k1"))]}"# }
        var settings = JWTSettings()
        settings.jwksURL = "http://127.0.0.1:\(provider.port)/jwks"
        let fixture = try await GatewayFixture.start { [settings] ws, _ in
            var route = Self.wsRoute("/jwt", ws)
            route.auth = AuthSettings(method: .jwt(settings))
            return [route]
        }
        defer { Task { await fixture.stop() } }
        let signers = JWTKeyCollection()
        await signers.add(ecdsa: first, kid: "k1")
        await signers.add(ecdsa: second, kid: "k2")
        let byFirst = try await signers.sign(Self.claims(aud: nil), kid: "k1")
        #expect(try await Self.status(fixture, "/jwt?token=\(byFirst)") == 101)
        #expect(provider.count("") == 1, "fetched at start")

        // The provider rotates: k2 in, k1 out.
        provider.jwks.withLockedValue { $0 = #"{"keys": [\#(jwk(second, "k2"))]}"# }
        let bySecond = try await signers.sign(Self.claims(aud: nil), kid: "k2")
        #expect(try await Self.status(fixture, "/jwt?token=\(bySecond)") == 101)
        #expect(provider.count("") >= 2, "fetched again, for k2")
        #expect(try await Self.status(fixture, "/jwt?token=\(byFirst)") == 401, "a key the provider dropped")
        // Made-up key ids, all at once: at most one fetch for them (one every 5 s; sent together,
        // so a stall of this process cannot spread them over more than one pause).
        await signers.add(ecdsa: ES256PrivateKey(), kid: "k9")
        let madeUp = try await signers.sign(Self.claims(aud: nil), kid: "k9")
        let before = provider.count("")
        async let one = Self.status(fixture, "/jwt?token=\(madeUp)")
        async let two = Self.status(fixture, "/jwt?token=\(madeUp)")
        async let three = Self.status(fixture, "/jwt?token=\(madeUp)")
        #expect(try await [one, two, three] == [401, 401, 401])
        #expect(provider.count("") - before <= 1, "unknown key ids fetch at most once every few seconds")

        // Forgeries: no signature at all, and the public key used as an HMAC secret.
        func base64URL(_ text: String) -> String {
            Data(text.utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        }
        let payload = base64URL(#"{"sub": "ann", "exp": \#(Int(Date().timeIntervalSince1970) + 300)}"#)
        let unsigned = base64URL(#"{"alg": "none", "typ": "JWT", "kid": "k2"}"#) + "." + payload + "."
        #expect(try await Self.status(fixture, "/jwt?token=\(unsigned)") == 401)
        let confused = JWTKeyCollection()
        await confused.add(hmac: HMACKey(from: second.publicKey.pemRepresentation), digestAlgorithm: .sha256, kid: "k2")
        let confusion = try await confused.sign(Self.claims(aud: nil), kid: "k2")
        #expect(try await Self.status(fixture, "/jwt?token=\(confusion)") == 401)
    }

    @Test func jwtTargetClaimIsCheckedToo() async throws {
        let (settings, signer) = try await Self.hs256("s")
        let fixture = try await GatewayFixture.start { ws, _ in
            var targets = DynamicTargets()
            targets.fromJWT = true
            targets.allowed = [TargetPattern(parsing: "127.0.0.1:\(ws)")!]
            var route = RouteConfiguration(path: "/app", backend: .dynamic)
            route.auth = AuthSettings(method: .jwt(settings))
            route.targets = targets
            return [route]
        }
        defer { Task { await fixture.stop() } }
        let good = try await signer.sign(Self.claims(aud: nil, target: "ws://127.0.0.1:\(fixture.wsEchoPort)/"))
        #expect(try await Self.status(fixture, "/app?token=\(good)") == 101)
        let elsewhere = try await signer.sign(Self.claims(aud: nil, target: "ws://10.0.0.1:\(fixture.wsEchoPort)/"))
        #expect(try await Self.status(fixture, "/app?token=\(elsewhere)") == 403)
        let none = try await signer.sign(Self.claims(aud: nil))
        #expect(try await Self.status(fixture, "/app?token=\(none)") == 403)
    }

    // MARK: Limits

    @Test func connectionLimitsPerIPAndTotal() async throws {
        var server = ServerSettings()
        server.limits.maxConnectionsPerIP = 2
        server.limits.maxConnections = 3
        let fixture = try await GatewayFixture.start(server: server) { ws, _ in [Self.wsRoute("/ws", ws)] }
        defer { Task { await fixture.stop() } }
        let (_, _, first) = try await Self.handshake(fixture, "/ws")
        let (_, _, second) = try await Self.handshake(fixture, "/ws")
        let (perIP, headers, third) = try await Self.handshake(fixture, "/ws")
        #expect(perIP == 429)
        #expect(headers["retry-after"] == "1")
        try await third.waitForEOF()
        // Another client address still gets in, up to the total.
        let (other, _, fourth) = try await Self.handshake(fixture, "/ws", from: "127.0.0.2")
        #expect(other == 101)
        let (total, _, fifth) = try await Self.handshake(fixture, "/ws", from: "127.0.0.3")
        #expect(total == 503)
        await fifth.close()
        // Closing frees the slot.
        await first.close()
        try await Task.sleep(nanoseconds: 100_000_000)
        let (again, _, sixth) = try await Self.handshake(fixture, "/ws", from: "127.0.0.3")
        #expect(again == 101)
        for client in [second, fourth, sixth] { await client.close() }
    }

    @Test func handshakeRatePerIP() async throws {
        var server = ServerSettings()
        server.limits.handshakeRatePerIP = 0.05  // a burst of 1, then one every 20 s (slow enough for a loaded machine)
        let fixture = try await GatewayFixture.start(server: server) { ws, _ in [Self.wsRoute("/ws", ws)] }
        defer { Task { await fixture.stop() } }
        #expect(try await Self.status(fixture, "/ws") == 101)
        let (limited, headers, client) = try await Self.handshake(fixture, "/ws")
        #expect(limited == 429)
        #expect((1...20).contains(Int(headers["retry-after"] ?? "") ?? 0))  // up to 1 / 0.05 s, less the time since the first
        await client.close()
        let (other, _, otherClient) = try await Self.handshake(fixture, "/ws", from: "127.0.0.2")
        #expect(other == 101)
        await otherClient.close()
    }

    @Test func oversizedFramesCloseWith1009AndTooManyHeadersGet431() async throws {
        var server = ServerSettings()
        server.limits.maxHeaderCount = 20
        let fixture = try await GatewayFixture.start(server: server) { ws, _ in
            var route = Self.wsRoute("/ws", ws)
            route.limits.maxFrameBytes = 1024
            return [route]
        }
        defer { Task { await fixture.stop() } }
        let (client, _) = try await fixture.client("/ws")
        try await client.sendFrame(2, pattern(1024))
        #expect(try await client.readMessage().payload == pattern(1024))
        try await client.sendFrame(2, pattern(1025))
        #expect(try await client.readFrame().closeCode == 1009)
        await client.close()
        let headers = (0..<20).map { "X-Filler-\($0): 1" }
        #expect(try await Self.status(fixture, "/ws", headers: headers) == 431)
    }
}

/// Liveness: a client that stops answering is found by pings and closed; pongs alone do not keep
/// an idle session open.
@Suite(.timeLimit(.minutes(3))) struct LivenessTests {
    static func fixture(ping: TimeAmount, idle: TimeAmount?) async throws -> GatewayFixture {
        try await GatewayFixture.start { ws, _ in
            var route = RouteConfiguration(path: "/ws", backend: .webSocket(host: "127.0.0.1", port: ws, path: nil, query: nil))
            route.limits.pingInterval = ping
            route.limits.idleTimeout = idle
            return [route]
        }
    }

    @Test func silentClientIsPingedThenClosed() async throws {
        let fixture = try await Self.fixture(ping: .milliseconds(300), idle: nil)
        defer { Task { await fixture.stop() } }
        let started = NIODeadline.now()
        let (client, _) = try await fixture.client("/ws")
        let ping = try await client.readFrame(timeout: .seconds(20))
        #expect(ping.opcode == 9)
        #expect(NIODeadline.now() - started >= .milliseconds(250))
        let close = try await client.readFrame(timeout: .seconds(20))  // never answered
        #expect(close.closeCode == 1001)
        #expect(fixture.gateway.activeSessions <= 1)
        await client.close()
    }

    /// The client is Python `websockets`, which answers pings from its own process: pongs keep it
    /// alive past many ping intervals, but only the idle timeout's worth (a test task answering by
    /// hand could be starved by parallel tests and miss a pong).
    @Test func answeringClientStaysUntilTheIdleTimeout() async throws {
        let fixture = try await Self.fixture(ping: .milliseconds(500), idle: .seconds(3))
        defer { Task { await fixture.stop() } }
        let result = try await ObservedClose.overHTTP1(url: "ws://127.0.0.1:\(fixture.port)/ws")
        #expect(result.code == 1001, "\(result)")
        #expect(result.reason == "idle timeout", "\(result)")
        #expect((result.seconds ?? 0) >= 2.9, "\(result)")
    }
}

/// The client's real address through a load balancer: PROXY protocol in and out, X-Forwarded-For
/// only from trusted proxies.
@Suite(.timeLimit(.minutes(3))) struct ClientIdentityTests {
    static func proxiedFixture(perIP: Int? = nil) async throws -> GatewayFixture {
        var server = ServerSettings()
        server.limits.maxConnectionsPerIP = perIP
        var listener = ListenerConfiguration(address: ListenAddress(host: "127.0.0.1", port: 0))
        listener.proxyProtocolFrom = [IPNetwork(parsing: "127.0.0.1")!]
        return try await GatewayFixture.start(server: server, listeners: [listener]) { ws, _ in
            [RouteConfiguration(path: "/ws", backend: .webSocket(host: "127.0.0.1", port: ws, path: nil, query: nil))]
        }
    }

    static func open(_ fixture: GatewayFixture, from source: String = "127.0.0.1", header: String, path: String = "/ws/inspect", extra: [String] = []) async throws -> (Int, TestClient) {
        try await self.open(fixture, from: source, header: Array(header.utf8), path: path, extra: extra)
    }

    static func open(_ fixture: GatewayFixture, from source: String = "127.0.0.1", header: [UInt8], path: String = "/ws/inspect", extra: [String] = []) async throws -> (Int, TestClient) {
        let client = try await TestClient.connect(port: fixture.port, from: source, group: fixture.group)
        try? await client.send(header + Array(TestClient.handshake(path: path, extra: extra).utf8))
        let (status, _) = try await client.readHead()
        return (status, client)
    }

    @Test func proxyHeaderNamesTheClientForBackendsAndLimits() async throws {
        let fixture = try await Self.proxiedFixture(perIP: 1)
        defer { Task { await fixture.stop() } }
        let (status, client) = try await Self.open(fixture, header: "PROXY TCP4 203.0.113.7 127.0.0.1 40000 8080\r\n", extra: ["X-Forwarded-For: 6.6.6.6"])
        #expect(status == 101)
        let greeting = try await client.readMessage().text
        #expect(greeting.contains("X-Forwarded-For: 203.0.113.7\n"), "\(greeting)")  // the spoofed entry is dropped
        #expect(greeting.contains("Forwarded: for=203.0.113.7;"))
        // The per-IP limit counts the proxied client, not the proxy.
        let (sameClient, second) = try await Self.open(fixture, header: "PROXY TCP4 203.0.113.7 127.0.0.1 40001 8080\r\n")
        #expect(sameClient == 429)
        await second.close()
        var v2 = ByteBuffer()
        ProxyProtocol.encode(.v2, source: try SocketAddress(ipAddress: "198.51.100.4", port: 1234), destination: try SocketAddress(ipAddress: "127.0.0.1", port: 8080), into: &v2)
        let (otherClient, third) = try await Self.open(fixture, header: Array(v2.readableBytesView))
        #expect(otherClient == 101)
        #expect(try await third.readMessage().text.contains("X-Forwarded-For: 198.51.100.4\n"))
        for c in [client, third] { await c.close() }
    }

    @Test func proxyHeaderIsRequiredFromTrustedPeersAndIgnoredFromOthers() async throws {
        let fixture = try await Self.proxiedFixture()
        defer { Task { await fixture.stop() } }
        // A trusted peer without a header is dropped.
        let bare = try await TestClient.connect(port: fixture.port, group: fixture.group)
        try await bare.send(TestClient.handshake(path: "/ws"))
        try await bare.waitForEOF()
        // An untrusted peer cannot name a client: its PROXY line is just a bad request.
        let (status, client) = try await Self.open(fixture, from: "127.0.0.2", header: "PROXY TCP4 203.0.113.7 127.0.0.1 40000 8080\r\n")
        #expect(status == 400)
        await client.close()
        // ...and a plain request from it works as usual.
        let (plain, direct) = try await Self.open(fixture, from: "127.0.0.2", header: "")
        #expect(plain == 101)
        #expect(try await direct.readMessage().text.contains("X-Forwarded-For: 127.0.0.2\n"))
        await direct.close()
    }

    @Test func tcpBackendsCanBeToldTheClientWithProxyProtocolV2() async throws {
        let recorder = RecordingHandler()
        let service = try await TestServices.start(group: MultiThreadedEventLoopGroup.singleton) { recorder }
        let port = service.localAddress!.port!
        let fixture = try await GatewayFixture.start { _, _ in
            var route = RouteConfiguration(path: "/tcp", backend: .tcp(host: "127.0.0.1", port: port))
            route.backendProxyProtocol = .v2
            return [route]
        }
        defer { Task { await fixture.stop(); try? await service.close() } }
        let (client, _) = try await fixture.client("/tcp")
        try await client.sendFrame(2, [1, 2, 3])
        try await eventually("the service to get the header and the message") { recorder.received.withLockedValue { $0.bytes.count >= 28 + 3 } }
        var received = ByteBuffer(bytes: recorder.received.withLockedValue { $0.bytes })
        let header = try ProxyProtocol.parse(&received)
        guard case .proxied(let source, let destination) = header else { Issue.record("no PROXY header: \(String(describing: header))"); return }
        #expect(source.ipAddress == "127.0.0.1")
        #expect(destination.port == fixture.port)
        #expect(Array(received.readableBytesView) == [1, 2, 3])
        await client.close()
    }
}
