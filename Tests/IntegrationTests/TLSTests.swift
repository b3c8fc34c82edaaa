import Foundation
import NIOCore
import NIOPosix
import Testing
@testable import WSGate

/// A throwaway CA and server certificate (Tests/peers/make-certs.sh, openssl).
struct TestCertificates {
    let directory: URL
    var ca: String { self.directory.appendingPathComponent("ca.pem").path }
    func certificate(_ name: String = "server") -> String { self.directory.appendingPathComponent("\(name).pem").path }
    func key(_ name: String = "server") -> String { self.directory.appendingPathComponent("\(name).key").path }
    func tls(_ name: String = "server") -> ListenerTLS { ListenerTLS(certificateFile: self.certificate(name), keyFile: self.key(name)) }

    static func make() async throws -> TestCertificates {
        let directory = Scratch.path("wsgate-certs")
        try await self.issue(in: directory, name: "server")
        return TestCertificates(directory: directory)
    }

    static func issue(in directory: URL, name: String, clientCN: String? = nil, dnsName: String? = nil) async throws {
        let script = ["/bin/bash", Peers.script("make-certs.sh"), directory.path, name] + (clientCN.map { [$0] } ?? [])
        let run = try await Peers.run(URL(fileURLWithPath: "/usr/bin/env"), (dnsName.map { ["DNS_NAME=\($0)"] } ?? []) + script)
        guard run.status == 0 else { throw TestTimeout(what: "test certificates: \(run.output)") }
    }

    /// A client certificate (mTLS) for `commonName`, signed by this CA: `name`.pem and `name`.key.
    func issueClient(_ name: String, commonName: String) async throws {
        try await Self.issue(in: self.directory, name: name, clientCN: commonName)
    }

    /// A server certificate for one DNS name (SNI), signed by this CA.
    func issueServer(_ name: String, for dnsName: String) async throws {
        try await Self.issue(in: self.directory, name: name, dnsName: dnsName)
    }

    func remove() {
        try? FileManager.default.removeItem(at: self.directory)
    }
}

@Suite(.timeLimit(.minutes(2))) struct TLSTests {
    static func tlsFixture(_ certificates: TestCertificates) async throws -> GatewayFixture {
        try await GatewayFixture.start(listeners: [ListenerConfiguration(address: ListenAddress(host: "127.0.0.1", port: 0), tls: certificates.tls())]) { ws, tcp in
            [
                RouteConfiguration(path: "/ws", backend: .webSocket(host: "127.0.0.1", port: ws, path: nil, query: nil)),
                RouteConfiguration(path: "/tcp", backend: .tcp(host: "127.0.0.1", port: tcp)),
            ]
        }
    }

    @Test func wssClientOverHTTP1() async throws {
        let certificates = try await TestCertificates.make()
        defer { certificates.remove() }
        let fixture = try await Self.tlsFixture(certificates)
        defer { Task { await fixture.stop() } }
        let run = try await Peers.run(try Peers.python, [Peers.script("wss_client.py"), "wss://localhost:\(fixture.port)/ws", certificates.ca, "über", "second"])
        #expect(run.output.contains("echo: über\necho: second\nclosed 1000"), "\(run.output)")
    }

    @Test func http2OverTLSWithALPN() async throws {
        let certificates = try await TestCertificates.make()
        defer { certificates.remove() }
        let fixture = try await Self.tlsFixture(certificates)
        defer { Task { await fixture.stop() } }
        let run = try await Peers.run(try Peers.python, [Peers.script("h2_websocket.py"), "127.0.0.1", String(fixture.port), "--tls", certificates.ca, "/ws", "/tcp", "/nothing"])
        let results = streamResults(run.output)
        #expect(results["/ws"] == StreamResult(path: "/ws", status: "200", echo: "hello /ws", close: 1000), "\(run.output)")
        #expect(results["/tcp"] == StreamResult(path: "/tcp", status: "200", echo: "hello /tcp", close: 1000))
        #expect(results["/nothing"]?.status == "404")
        let nghttp = try Peers.which("nghttp")
        let plain = try await Peers.run(nghttp, ["-nv", "--no-verify-peer", "https://127.0.0.1:\(fixture.port)/healthz"])
        #expect(plain.output.contains("The negotiated protocol: h2"), "\(plain.output.suffix(300))")
        #expect(plain.output.contains(":status: 200"))
    }

    @Test func wssBackendWithPrivateCA() async throws {
        // The backend is a second gateway on TLS, in front of the echo: gateway → wss://localhost → gateway → ws echo.
        let certificates = try await TestCertificates.make()
        defer { certificates.remove() }
        let backend = try await Self.tlsFixture(certificates)
        defer { Task { await backend.stop() } }
        let front = try await GatewayFixture.start { _, _ in
            var trusted = RouteConfiguration(path: "/trusted", backend: .webSocket(host: "localhost", port: backend.port, path: "/ws", query: nil, tls: true))
            trusted.backendTLS = BackendTLS(caFile: certificates.ca)
            var byAddress = RouteConfiguration(path: "/by-address", backend: .webSocket(host: "127.0.0.1", port: backend.port, path: "/ws", query: nil, tls: true))
            byAddress.backendTLS = BackendTLS(caFile: certificates.ca, serverName: "localhost")
            let untrusted = RouteConfiguration(path: "/untrusted", backend: .webSocket(host: "localhost", port: backend.port, path: "/ws", query: nil, tls: true))
            return [trusted, byAddress, untrusted]
        }
        defer { Task { await front.stop() } }
        for path in ["/trusted", "/by-address"] {
            let (client, _) = try await front.client(path)
            try await client.sendFrame(1, Array("through TLS".utf8))
            #expect(try await client.readMessage().text == "through TLS", "\(path)")
            try await client.sendClose(1000)
            #expect(try await client.readFrame().closeCode == 1000)
        }
        // Without the CA the backend's certificate is not trusted: 502, no session.
        let client = try await front.raw()
        try await client.send(TestClient.handshake(path: "/untrusted"))
        #expect(try await client.readResponse().0 == 502)
    }

    /// A wss backend that requires client certificates (a TLS gateway with `client_ca`, its route
    /// open to `CN=gateway` only) accepts the gateway's `backend_tls` certificate; without one, or
    /// with one its CA did not sign, the backend refuses and the client gets 502.
    @Test func wssBackendRequiringAClientCertificate() async throws {
        let certificates = try await TestCertificates.make()
        defer { certificates.remove() }
        try await certificates.issueClient("gateway", commonName: "gateway")
        let strangers = try await TestCertificates.make()
        defer { strangers.remove() }
        try await strangers.issueClient("gateway", commonName: "gateway")
        var tls = certificates.tls()
        tls.clientCAFile = certificates.ca
        tls.clientCertificateRequired = true
        let backend = try await GatewayFixture.start(listeners: [ListenerConfiguration(address: ListenAddress(host: "127.0.0.1", port: 0), tls: tls)]) { ws, _ in
            var route = RouteConfiguration(path: "/ws", backend: .webSocket(host: "127.0.0.1", port: ws, path: nil, query: nil))
            route.clientSubjects = ["CN=gateway"]
            return [route]
        }
        defer { Task { await backend.stop() } }
        let front = try await GatewayFixture.start { _, _ in
            func route(_ path: String, _ settings: BackendTLS) -> RouteConfiguration {
                var route = RouteConfiguration(path: path, backend: .webSocket(host: "localhost", port: backend.port, path: "/ws", query: nil, tls: true))
                route.backendTLS = settings
                return route
            }
            return [
                route("/with-certificate", BackendTLS(caFile: certificates.ca, certificateFile: certificates.certificate("gateway"), keyFile: certificates.key("gateway"))),
                route("/without", BackendTLS(caFile: certificates.ca)),
                route("/foreign", BackendTLS(caFile: certificates.ca, certificateFile: strangers.certificate("gateway"), keyFile: strangers.key("gateway"))),
            ]
        }
        defer { Task { await front.stop() } }
        let (client, _) = try await front.client("/with-certificate")
        try await client.sendFrame(1, Array("mutual".utf8))
        #expect(try await client.readMessage().text == "mutual")
        try await client.sendClose(1000)
        #expect(try await client.readFrame().closeCode == 1000)
        for path in ["/without", "/foreign"] {
            let refused = try await front.raw()
            try await refused.send(TestClient.handshake(path: path))
            #expect(try await refused.readResponse().0 == 502, "\(path)")
        }
    }

    @Test func certificateReloadKeepsLiveSessions() async throws {
        let certificates = try await TestCertificates.make()
        defer { certificates.remove() }
        let fixture = try await Self.tlsFixture(certificates)
        defer { Task { await fixture.stop() } }
        let serialBefore = try await Self.servedSerial(port: fixture.port)

        // A live session over the old certificate.
        let session = Task {
            try await Peers.run(try Peers.python, [Peers.script("wss_slow_client.py"), "wss://localhost:\(fixture.port)/ws", certificates.ca, "3"])
        }
        try await eventually("the live session", timeout: .seconds(30)) { fixture.gateway.activeSessions == 1 }  // a Python process starting under a busy suite

        try await TestCertificates.issue(in: certificates.directory, name: "server")  // new key and certificate, same files
        fixture.gateway.reloadCertificates()
        let serialAfter = try await Self.servedSerial(port: fixture.port)
        #expect(serialBefore != serialAfter)

        let run = try await session.value
        #expect(run.output.contains("closed 1000"), "\(run.output)")
        #expect(run.output.components(separatedBy: "echo: ").count == 4, "\(run.output)")
    }

    @Test func sighupReloadsTheRunningProcess() async throws {
        let certificates = try await TestCertificates.make()
        defer { certificates.remove() }
        let gateway = try await GatewayProcess(arguments: ["--listen", "127.0.0.1:0", "--route", "/=tcp://127.0.0.1:1", "--cert", certificates.certificate(), "--key", certificates.key()])
        defer { gateway.stop() }
        try await gateway.waitUntilListening()
        let before = try await Self.servedSerial(port: gateway.port)
        try await TestCertificates.issue(in: certificates.directory, name: "server")
        gateway.signal(SIGHUP)
        try await eventually("the reload log line") { gateway.log.contains("reloaded TLS certificate") }
        #expect(try await Self.servedSerial(port: gateway.port) != before)
        #expect(gateway.process.isRunning)
    }

    /// The serial number of the certificate the listener presents now.
    static func servedSerial(port: Int) async throws -> String {
        let run = try await Peers.run(URL(fileURLWithPath: "/bin/bash"), ["-c", "openssl s_client -connect 127.0.0.1:\(port) -servername localhost </dev/null 2>/dev/null | openssl x509 -noout -serial"])
        let serial = run.output.trimmingCharacters(in: .whitespacesAndNewlines)
        guard serial.hasPrefix("serial=") else { throw TestTimeout(what: "a certificate from the listener: \(run.output)") }
        return serial
    }
}

/// Several certificates on one listener, chosen by the name a client asks for (SNI), each picked up
/// again when its file is replaced, without a restart.
@Suite(.timeLimit(.minutes(3))) struct SNICertificateTests {
    /// The subject and serial of the certificate served for `name`.
    static func served(port: Int, name: String) async throws -> String {
        let run = try await Peers.run(URL(fileURLWithPath: "/bin/bash"), ["-c", "openssl s_client -connect 127.0.0.1:\(port) -servername \(name) </dev/null 2>/dev/null | openssl x509 -noout -subject -serial"])
        return run.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test func eachNameGetsItsCertificateAndARenamedOneIsPickedUpAndUnusableDirectoryFilesAreLeftOut() async throws {
        let certificates = try await TestCertificates.make()
        defer { certificates.remove() }
        try await certificates.issueServer("a", for: "a.test")
        try await certificates.issueServer("b", for: "*.b.test")
        let directory = Scratch.path("wsgate-sni-certificates")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        // Two files in the directory that cannot be served: a certificate naming no DNS name and
        // one that is not PEM. They are logged and left out; the listener starts, and the
        // directory's later certificates are still picked up.
        try await certificates.issueClient("nodns", commonName: "nodns")
        _ = rename(certificates.key("nodns"), directory.appendingPathComponent("nodns.key").path)
        _ = rename(certificates.certificate("nodns"), directory.appendingPathComponent("nodns.pem").path)
        try "not a certificate".write(to: directory.appendingPathComponent("garbage.pem"), atomically: true, encoding: .utf8)
        try "not a key".write(to: directory.appendingPathComponent("garbage.key"), atomically: true, encoding: .utf8)
        let config = Scratch.path("wsgate-sni", suffix: ".yaml")
        try """
            listeners:
              - address: "127.0.0.1:0"
                tls:
                  certificate: \(certificates.certificate())
                  key: \(certificates.key())
                  certificates:
                    - {certificate: \(certificates.certificate("a")), key: \(certificates.key("a"))}
                    - {certificate: \(certificates.certificate("b")), key: \(certificates.key("b"))}
                  certificates_directory: \(directory.path)
            routes: [{path: /, backend: "tcp://127.0.0.1:1"}]
            """.write(to: config, atomically: true, encoding: .utf8)
        let gateway = try await GatewayProcess(arguments: ["--config", config.path, "--watch-interval", "0.5"])
        defer { gateway.stop() }
        try await gateway.waitUntilListening()
        #expect(gateway.log.contains("nodns.pem left out"), "\(gateway.log)")
        #expect(gateway.log.contains("garbage.pem left out"), "\(gateway.log)")

        let a = try await Self.served(port: gateway.port, name: "a.test")
        #expect(a.contains("CN=a.test") || a.contains("CN = a.test"), "\(a)")
        let b = try await Self.served(port: gateway.port, name: "console.b.test")
        #expect(b.contains("b.test"), "\(b)")
        for other in ["localhost", "c.test", "deep.console.b.test"] {
            let served = try await Self.served(port: gateway.port, name: other)
            #expect(served.contains("CN=localhost") || served.contains("CN = localhost"), "\(other): \(served)")
        }

        // A new certificate for a.test, renamed into place as deployment tools do.
        try await certificates.issueServer("a-next", for: "a.test")
        _ = rename(certificates.key("a-next"), certificates.key("a"))
        _ = rename(certificates.certificate("a-next"), certificates.certificate("a"))
        var now = a
        let deadline = NIODeadline.now() + .seconds(20)
        while now == a && NIODeadline.now() < deadline {
            try await Task.sleep(nanoseconds: 200_000_000)
            now = try await Self.served(port: gateway.port, name: "a.test")
        }
        #expect(now != a && now.contains("a.test"), "still \(now)")

        // A certificate for a new name dropped into the directory (key first, then the certificate).
        try await certificates.issueServer("d", for: "d.test")
        _ = rename(certificates.key("d"), directory.appendingPathComponent("d.key").path)
        _ = rename(certificates.certificate("d"), directory.appendingPathComponent("d.pem").path)
        var d = ""
        let added = NIODeadline.now() + .seconds(20)
        while !d.contains("d.test") && NIODeadline.now() < added {
            try await Task.sleep(nanoseconds: 200_000_000)
            d = try await Self.served(port: gateway.port, name: "d.test")
        }
        #expect(d.contains("d.test"), "\(d)")
    }
}

/// mTLS: client certificates verified against a CA on the listener, routes restricted by subject.
@Suite(.timeLimit(.minutes(2))) struct MutualTLSTests {
    @Test func clientCertificatesAreVerifiedAndRoutedOnSubject() async throws {
        let certificates = try await TestCertificates.make()
        defer { certificates.remove() }
        for name in ["alice", "bob"] {
            try await certificates.issueClient(name, commonName: name)
        }
        // A certificate from another CA, which the listener must not accept.
        let strangers = try await TestCertificates.make()
        defer { strangers.remove() }
        try await strangers.issueClient("mallory", commonName: "alice")

        var tls = certificates.tls()
        tls.clientCAFile = certificates.ca
        tls.clientCertificateRequired = false
        let fixture = try await GatewayFixture.start(listeners: [ListenerConfiguration(address: ListenAddress(host: "127.0.0.1", port: 0), tls: tls)]) { ws, _ in
            var admin = RouteConfiguration(path: "/admin", backend: .webSocket(host: "127.0.0.1", port: ws, path: nil, query: nil))
            admin.clientSubjects = ["CN=alice"]
            return [admin, RouteConfiguration(path: "/open", backend: .webSocket(host: "127.0.0.1", port: ws, path: nil, query: nil))]
        }
        defer { Task { await fixture.stop() } }
        func connect(_ path: String, as name: String?, from authority: TestCertificates? = nil) async throws -> String {
            var arguments = [Peers.script("wss_client.py"), "wss://localhost:\(fixture.port)\(path)", certificates.ca]
            if let name {
                let issuer = authority ?? certificates
                arguments += ["--client", issuer.certificate(name), issuer.key(name)]
            }
            return try await Peers.run(try Peers.python, arguments + ["hi"]).output
        }
        #expect(try await connect("/admin", as: "alice").contains("echo: hi\nclosed 1000"))
        #expect(try await connect("/admin", as: "bob").contains("status 403"))
        #expect(try await connect("/admin", as: nil).contains("status 403"))
        #expect(try await connect("/open", as: nil).contains("echo: hi"))  // optional: routes decide
        let stranger = try await connect("/open", as: "mallory", from: strangers)
        #expect(!stranger.contains("echo: hi"), "a certificate from another CA was accepted: \(stranger)")
    }
}
