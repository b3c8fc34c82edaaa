import NIOCore
import Testing
@testable import WSGate

@Suite(.timeLimit(.minutes(3))) struct HTTPFrontTests {
    @Test func plainRequestsKeepTheConnectionAlive() async throws {
        let fixture = try await GatewayFixture.standard()
        defer { Task { await fixture.stop() } }
        let client = try await fixture.raw()
        try await client.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(try await client.readResponse().0 == 200)
        try await client.send("GET /ws HTTP/1.1\r\nHost: x\r\n\r\n")
        let (status, headers, _) = try await client.readResponse()
        #expect(status == 426)
        #expect(headers["upgrade"] == "websocket")
        try await client.send("GET /elsewhere HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(try await client.readResponse().0 == 404)
        // HEAD gets the headers without the body, so the next response starts right after them.
        try await client.send("HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(try await client.readHead().0 == 200)
        try await client.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        let (status2, _, body) = try await client.readResponse()
        #expect(status2 == 200)
        #expect(body == "ok\n")
        // And after all that, the same connection still upgrades.
        try await client.send(TestClient.handshake(path: "/ws"))
        #expect(try await client.readHead().0 == 101)
    }

    @Test func listensOnIPv4AndIPv6Loopback() async throws {
        let fixture = try await GatewayFixture.start(listeners: [ListenerConfiguration(address: ListenAddress(host: "127.0.0.1", port: 0)), ListenerConfiguration(address: ListenAddress(host: "::1", port: 0))]) { ws, _ in
            [RouteConfiguration(path: "/", backend: .webSocket(host: "127.0.0.1", port: ws, path: nil, query: nil))]
        }
        defer { Task { await fixture.stop() } }
        #expect(fixture.addresses.count == 2)
        for (host, address) in zip(["127.0.0.1", "::1"], fixture.addresses) {
            let client = try await TestClient.connect(port: address.port!, host: host, group: fixture.group)
            try await client.send(TestClient.handshake(path: "/"))
            #expect(try await client.readHead().0 == 101, "\(host)")
            try await client.sendFrame(1, Array(host.utf8))
            #expect(try await client.readMessage().text == host)
        }
    }

    @Test func handshakeRefusalsOverTheWire() async throws {
        let fixture = try await GatewayFixture.standard()
        defer { Task { await fixture.stop() } }
        let cases: [(String, Int)] = [
            ("POST /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nContent-Length: 0\r\n\r\n", 405),
            ("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: c2hvcnQ=\r\nSec-WebSocket-Version: 13\r\n\r\n", 400),
            ("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n", 426),
            ("GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", 400),
            ("GARBAGE\r\n\r\n", 400),
        ]
        for (request, status) in cases {
            let client = try await fixture.raw()
            try await client.send(request)
            #expect(try await client.readResponse().0 == status, "\(request.prefix(30))")
            try await client.waitForEOF()
        }
    }

    @Test func oversizedHeadIs431() async throws {
        var server = ServerSettings()
        server.maxRequestHeadBytes = 1024
        let fixture = try await GatewayFixture.start(server: server) { ws, _ in
            [RouteConfiguration(path: "/", backend: .webSocket(host: "127.0.0.1", port: ws, path: nil, query: nil))]
        }
        defer { Task { await fixture.stop() } }
        let client = try await fixture.raw()
        try await client.send("GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + String(repeating: "a", count: 2000) + "\r\n\r\n")
        #expect(try await client.readResponse().0 == 431)
        try await client.waitForEOF()
    }

    /// A complete head announcing a body that never comes is a request that never completes: the
    /// same timeout drops it (it used to hold the connection for good).
    @Test func aBodyThatNeverComesIsDropped() async throws {
        let fixture = try await GatewayFixture.withHandshakeTimeout(.milliseconds(300))
        defer { Task { await fixture.stop() } }
        let started = NIODeadline.now()
        let client = try await fixture.raw()
        try? await client.send("GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nonly part of it")
        try await client.waitForEOF(timeout: .seconds(30))
        #expect(NIODeadline.now() - started >= .milliseconds(300))
    }

    @Test func slowClientIsDropped() async throws {
        let fixture = try await GatewayFixture.withHandshakeTimeout(.milliseconds(200))
        defer { Task { await fixture.stop() } }
        let started = NIODeadline.now()
        let client = try await fixture.raw()
        // Never finishes its head. On a loaded machine the gateway may drop us before this is sent.
        try? await client.send("GET / HTTP/1.1\r\nHost: x\r\n")
        // A bound, not a timing: parallel tests (the hostile-client one) can starve this one for seconds.
        try await client.waitForEOF(timeout: .seconds(30))
        #expect(NIODeadline.now() - started >= .milliseconds(200))
    }
}
