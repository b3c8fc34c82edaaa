import DemoBackends
import Foundation
import JWTKit
import NIOCore
import NIOPosix
import Testing
@testable import WSGate

/// `wsgate websockify`: websockify's command line on a real process — files from --web and the
/// WebSocket on any path, bridged to a TCP service; token plugins confined; unsupported options
/// refused by name.
@Suite(.timeLimit(.minutes(3))) struct WebsockifyCommandTests {
    @Test func servesWebFilesAndBridgesAnyPathToTheTarget() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { group.shutdownGracefully { _ in } }
        let echo = try await TCPServices.startEcho(host: "127.0.0.1", port: 0, group: group)
        defer { echo.close(promise: nil) }
        let web = Scratch.path("wsgate-web")
        try FileManager.default.createDirectory(at: web, withIntermediateDirectories: true)
        try "<title>noVNC</title>".write(to: web.appendingPathComponent("vnc.html"), atomically: true, encoding: .utf8)
        let gateway = try await GatewayProcess(arguments: ["websockify", "--web", web.path, "--heartbeat", "20", "127.0.0.1:0", "127.0.0.1:\(echo.localAddress?.port ?? 0)"])
        defer { gateway.stop() }
        try await gateway.waitUntilListening()

        let page = try await TestClient.connect(port: gateway.port, group: group)
        try await page.send("GET /vnc.html HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        let (status, _, body) = try await page.readResponse()
        #expect(status == 200 && body == "<title>noVNC</title>")
        await page.close()
        for path in ["/websockify", "/"] {
            let (client, _) = try await TestClient.webSocket(port: gateway.port, path: path, group: group)
            try await client.sendFrame(2, [1, 2, 3])
            #expect(try await client.readMessage().payload == [1, 2, 3], "\(path)")
            await client.close()
        }
    }

    /// The status a WebSocket handshake on `path` gets.
    static func status(_ port: Int, _ path: String, group: EventLoopGroup) async throws -> Int {
        let client = try await TestClient.connect(port: port, group: group)
        defer { Task { await client.close() } }
        try await client.send(TestClient.handshake(path: path))
        return try await client.readResponse().0
    }

    struct TargetClaims: JWTPayload {
        var host: String
        var port: String
        var nbf: NotBeforeClaim?
        var exp: ExpirationClaim?
        func verify(using algorithm: some JWTAlgorithm) async throws {}
    }

    /// websockify's own token plugin cases (its tests/test_token_plugins.py) replayed through
    /// `wsgate websockify`: ReadOnlyTokenFile (a simple file; an empty one), JWTTokenApi with an RSA
    /// public key and with the private key as the source, a wrong key, nbf/exp inside and outside
    /// the window, a symmetric key file (a JWK `k`). The same tokens reach the same targets (the
    /// test's TCP service), and the rest are refused. (Its encrypted-token case is not replayed:
    /// jwt-kit has no JWE.)
    @Test func websockifysTokenPluginCasesResolveTheSame() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { group.shutdownGracefully { _ in } }
        let echo = try await TCPServices.startEcho(host: "127.0.0.1", port: 0, group: group)
        defer { echo.close(promise: nil) }
        let service = echo.localAddress?.port ?? 0
        let keys = Scratch.path("wsgate-websockify-keys")
        try FileManager.default.createDirectory(at: keys, withIntermediateDirectories: true)
        let openssl = try await Peers.run(URL(fileURLWithPath: "/bin/bash"), ["-c", """
            cd \(keys.path) && openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out private.pem 2>/dev/null \
              && openssl pkey -in private.pem -pubout -out public.pem && openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out wrong.pem 2>/dev/null
            """])
        #expect(openssl.status == 0, "\(openssl.output)")
        func path(_ name: String) -> String { keys.appendingPathComponent(name).path }

        // ReadOnlyTokenFile: test_simple; test_empty has nothing to allow, which wsgate refuses to guess.
        try "testhost: 127.0.0.1:\(service)\n".write(toFile: path("tokens"), atomically: true, encoding: .utf8)
        try "".write(toFile: path("empty"), atomically: true, encoding: .utf8)
        let byFile = try await GatewayProcess(arguments: ["websockify", "--token-plugin", "ReadOnlyTokenFile", "--token-source", path("tokens"), "127.0.0.1:0"])
        defer { byFile.stop() }
        try await byFile.waitUntilListening()
        #expect(try await Self.status(byFile.port, "/?token=testhost", group: group) == 101)
        #expect(try await Self.status(byFile.port, "/?token=otherhost", group: group) == 403)
        let empty = try await GatewayProcess.run(["websockify", "--token-plugin", "ReadOnlyTokenFile", "--token-source", path("empty"), "6080"])
        #expect(empty.status == 2 && empty.output.contains("--allow"), "\(empty.output)")

        // JWTTokenApi, asymmetric: the public key or the private key as the source.
        let signer = JWTKeyCollection()
        await signer.add(rsa: try Insecure.RSA.PrivateKey(pem: String(contentsOfFile: path("private.pem"), encoding: .utf8)), digestAlgorithm: .sha256)
        let stranger = JWTKeyCollection()
        await stranger.add(rsa: try Insecure.RSA.PrivateKey(pem: String(contentsOfFile: path("wrong.pem"), encoding: .utf8)), digestAlgorithm: .sha256)
        let now = Date()
        let target = TargetClaims(host: "127.0.0.1", port: String(service))
        var inWindow = target
        inWindow.nbf = NotBeforeClaim(value: now.addingTimeInterval(-50))
        inWindow.exp = ExpirationClaim(value: now.addingTimeInterval(50))
        var early = inWindow
        early.nbf = NotBeforeClaim(value: now.addingTimeInterval(100))
        early.exp = ExpirationClaim(value: now.addingTimeInterval(200))
        var late = inWindow
        late.nbf = NotBeforeClaim(value: now.addingTimeInterval(-200))
        late.exp = ExpirationClaim(value: now.addingTimeInterval(-100))
        for source in ["public.pem", "private.pem"] {
            let gateway = try await GatewayProcess(arguments: ["websockify", "--token-plugin", "JWTTokenApi", "--token-source", path(source),
                                                               "--allow", "127.0.0.1:\(service)", "127.0.0.1:0"])
            defer { gateway.stop() }
            try await gateway.waitUntilListening()
            let cases: [(String, String, Int)] = [
                ("test_asymmetric_jws_token_plugin", try await signer.sign(target), 101),
                ("test_jwt_valid_time", try await signer.sign(inWindow), 101),
                ("test_jwt_early_time", try await signer.sign(early), 401),
                ("test_jwt_late_time", try await signer.sign(late), 401),
                ("test_asymmetric_jws_token_plugin_with_illigal_key_exception", try await stranger.sign(target), 401),
            ]
            for (name, token, expected) in cases {
                #expect(try await Self.status(gateway.port, "/?token=\(token)", group: group) == expected, "\(source) \(name)")
            }
        }

        // JWTTokenApi, symmetric: the key file holds a JWK's k (base64url).
        let secret = (0..<32).map { _ in UInt8.random(in: 0...255) }
        let k = Data(secret).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        try k.write(toFile: path("symmetric.key"), atomically: true, encoding: .utf8)
        let symmetric = try await GatewayProcess(arguments: ["websockify", "--token-plugin", "JWTTokenApi", "--token-source", path("symmetric.key"),
                                                             "--allow", "127.0.0.1:\(service)", "127.0.0.1:0"])
        defer { symmetric.stop() }
        try await symmetric.waitUntilListening()
        let hs256 = JWTKeyCollection()
        await hs256.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        #expect(try await Self.status(symmetric.port, "/?token=\(try await hs256.sign(target))", group: group) == 101, "test_symmetric_jws_token_plugin")
        let otherSecret = JWTKeyCollection()
        await otherSecret.add(hmac: HMACKey(from: Array(repeating: UInt8(7), count: 32)), digestAlgorithm: .sha256)
        #expect(try await Self.status(symmetric.port, "/?token=\(try await otherSecret.sign(target))", group: group) == 401,
                "test_symmetric_jws_token_plugin_with_illigal_key_exception")
    }

    @Test func tokenPluginsStayConfinedAndOtherOptionsAreRefusedByName() async throws {
        let tokens = try SecurityTests.file("vnc1: 127.0.0.1:5901\nvnc2: 10.0.0.5:5900\n")
        let printed = try await GatewayProcess.run(["websockify", "--print-config", "--token-plugin", "TokenFile", "--token-source", tokens, "6080"])
        #expect(printed.status == 0, "\(printed.output)")
        #expect(printed.output.contains("token_file: \"\(tokens)\"") && printed.output.contains("allowed: [\"10.0.0.5:5900\", \"127.0.0.1:5901\"]"), "\(printed.output)")
        // What it prints is a configuration wsgate takes.
        let file = Scratch.path("wsgate-websockify", suffix: ".yaml")
        try printed.output.write(to: file, atomically: true, encoding: .utf8)
        let checked = try await GatewayProcess.run(["check", file.path])
        #expect(checked.status == 0, "\(checked.output)")

        for (arguments, named) in [(["--ssl-target", "6080", "127.0.0.1:5900"], "--ssl-target"), (["-D", "6080", "127.0.0.1:5900"], "-D"),
                                   (["--bogus=1", "6080", "127.0.0.1:5900"], "--bogus"), (["6080", "--", "vncserver"], "WRAP_COMMAND_LINE"),
                                   (["--token-plugin", "JWTTokenApi", "--token-source", tokens, "6080"], "--allow")] {
            let run = try await GatewayProcess.run(["websockify"] + arguments)
            #expect(run.status == 2 && run.output.contains(named), "\(arguments): \(run.output)")
        }
    }
}
