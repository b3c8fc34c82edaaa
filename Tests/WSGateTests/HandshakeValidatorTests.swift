import NIOHTTP1
import Testing
@testable import WSGate

@Suite struct HandshakeValidatorTests {
    let routes = RouteTable([
        RouteConfiguration(path: "/vnc", backend: .tcp(host: "127.0.0.1", port: 5900)),
        RouteConfiguration(path: "/chat", backend: .webSocket(host: "127.0.0.1", port: 9000, path: nil, query: nil), subprotocols: ["chat.v2", "chat.v1"]),
    ])

    func head(_ method: HTTPMethod = .GET, _ uri: String = "/vnc", version: HTTPVersion = .http1_1, drop: [String] = [], set: [(String, String)] = []) -> HTTPRequestHead {
        var headers: HTTPHeaders = [
            "Host": "gw.example", "Upgrade": "websocket", "Connection": "Upgrade",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13",
        ]
        for name in drop { headers.remove(name: name) }
        for (name, value) in set { headers.replaceOrAdd(name: name, value: value) }
        return HTTPRequestHead(version: version, method: method, uri: uri, headers: headers)
    }

    func refusal(_ head: HTTPRequestHead) -> HTTPRefusal? {
        if case .refuse(let refusal) = HandshakeValidator.decide(head, routes: self.routes) { return refusal }
        return nil
    }

    @Test func rfcSampleKeyGivesRfcAccept() {
        #expect(WebSocketAccept.value(forKey: "dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    }

    @Test func validHandshakeUpgrades() throws {
        guard case .upgrade(let request) = HandshakeValidator.decide(self.head(), routes: self.routes) else {
            Issue.record("expected an upgrade")
            return
        }
        #expect(request.key == "dGhlIHNhbXBsZSBub25jZQ==")
        #expect(request.route.configuration.path == "/vnc")
    }

    @Test func tokensAreCaseInsensitiveLists() {
        let head = self.head(set: [("Upgrade", "WebSocket"), ("Connection", "keep-alive, UPGRADE")])
        guard case .upgrade = HandshakeValidator.decide(head, routes: self.routes) else {
            Issue.record("expected an upgrade")
            return
        }
    }

    @Test func healthIsAnsweredWithoutRoute() {
        guard case .probe(.health) = HandshakeValidator.decide(HTTPRequestHead(version: .http1_1, method: .GET, uri: "/healthz"), routes: self.routes) else {
            Issue.record("expected health")
            return
        }
    }

    @Test func unroutedIs404() {
        #expect(self.refusal(self.head(.GET, "/nothing"))?.status == .notFound)
        #expect(self.refusal(self.head(.GET, "/vncx"))?.status == .notFound)
    }

    @Test func plainRequestToRouteIs426WithUpgradeHeader() throws {
        let refusal = try #require(self.refusal(HTTPRequestHead(version: .http1_1, method: .GET, uri: "/vnc", headers: ["Host": "x"])))
        #expect(refusal.status == .upgradeRequired)
        #expect(refusal.headers["Upgrade"] == ["websocket"])
        #expect(!refusal.closesConnection)
    }

    @Test func nonGetIs405WithAllow() throws {
        let refusal = try #require(self.refusal(self.head(.POST)))
        #expect(refusal.status == .methodNotAllowed)
        #expect(refusal.headers["Allow"] == ["GET"])
    }

    @Test func http10IsRefused() {
        #expect(self.refusal(self.head(version: .http1_0))?.status == .badRequest)
    }

    @Test func missingHostIs400() {
        #expect(self.refusal(self.head(drop: ["Host"]))?.status == .badRequest)
    }

    @Test func connectionWithoutUpgradeIs400() {
        #expect(self.refusal(self.head(set: [("Connection", "keep-alive")]))?.status == .badRequest)
    }

    @Test func wrongOrMissingVersionIs426WithVersion() throws {
        for head in [self.head(set: [("Sec-WebSocket-Version", "8")]), self.head(drop: ["Sec-WebSocket-Version"])] {
            let refusal = try #require(self.refusal(head))
            #expect(refusal.status == .upgradeRequired)
            #expect(refusal.headers["Sec-WebSocket-Version"] == ["13"])
        }
    }

    @Test(arguments: ["", "c2hvcnQ=", "not base64 at all!!!!!!", "AAAAAAAAAAAAAAAAAAAAAAAA"])
    func badKeysAre400(key: String) {
        #expect(self.refusal(self.head(set: [("Sec-WebSocket-Key", key)]))?.status == .badRequest)
    }

    @Test func missingKeyIs400() {
        #expect(self.refusal(self.head(drop: ["Sec-WebSocket-Key"]))?.status == .badRequest)
    }

    @Test func subprotocolsAreFilteredByRoute() {
        var head = self.head(.GET, "/chat", set: [("Sec-WebSocket-Protocol", "chat.v3, chat.v1")])
        head.headers.add(name: "Sec-WebSocket-Protocol", value: "chat.v2")
        guard case .upgrade(let request) = HandshakeValidator.decide(head, routes: self.routes) else {
            Issue.record("expected an upgrade")
            return
        }
        #expect(request.subprotocols == ["chat.v1", "chat.v2"])
    }

    @Test func noAllowedSubprotocolIs400() {
        let head = self.head(.GET, "/chat", set: [("Sec-WebSocket-Protocol", "other")])
        #expect(self.refusal(head)?.status == .badRequest)
    }

    /// A browser fails a handshake that offered subprotocols and got none back, so a tcp:// route
    /// without a list names the client's protocol: websockify's `binary` first, never `base64`.
    @Test(arguments: [
        ("base64, binary", "binary"), ("mqtt", "mqtt"), ("v12.stomp, v11.stomp, v10.stomp", "v12.stomp"),
        ("base64, mqtt", "mqtt"), ("base64", nil), ("", nil),
    ] as [(String, String?)])
    func byteStreamRoutesAnswerTheClientsProtocol(offered: String, answer: String?) {
        let head = self.head(set: offered.isEmpty ? [] : [("Sec-WebSocket-Protocol", offered)])
        guard case .upgrade(let request) = HandshakeValidator.decide(head, routes: self.routes) else {
            Issue.record("expected an upgrade")
            return
        }
        #expect(BackendConnector.subprotocolForByteStream(request) == answer)
    }

    /// With a list, the client's first offer in it; offering none of it is refused before any backend.
    @Test func byteStreamRoutesWithAListAnswerFromIt() {
        let routes = RouteTable([RouteConfiguration(path: "/mqtt", backend: .tcp(host: "127.0.0.1", port: 1883), subprotocols: ["mqtt", "mqttv3.1"])])
        let head = self.head(.GET, "/mqtt", set: [("Sec-WebSocket-Protocol", "mqttv3.1, mqtt")])
        guard case .upgrade(let request) = HandshakeValidator.decide(head, routes: routes) else {
            Issue.record("expected an upgrade")
            return
        }
        #expect(BackendConnector.subprotocolForByteStream(request) == "mqttv3.1")
        let other = self.head(.GET, "/mqtt", set: [("Sec-WebSocket-Protocol", "stomp")])
        guard case .refuse(let refusal) = HandshakeValidator.decide(other, routes: routes) else {
            Issue.record("expected a refusal")
            return
        }
        #expect(refusal.status == .badRequest)
    }
}

@Suite struct RequestHeadLimiterTests {
    func feed(_ limiter: inout RequestHeadLimiter, _ text: String) -> RequestHeadLimiter.Verdict {
        Array(text.utf8).withUnsafeBytes { limiter.consume($0) }
    }

    @Test func headWithinLimitPasses() {
        var limiter = RequestHeadLimiter(limit: 64)
        #expect(self.feed(&limiter, "GET / HTTP/1.1\r\nHost: a\r\n\r\n") == .withinLimit)
    }

    @Test func oversizedHeadIsCaughtAcrossChunks() {
        var limiter = RequestHeadLimiter(limit: 64)
        #expect(self.feed(&limiter, "GET / HTTP/1.1\r\n") == .withinLimit)
        #expect(self.feed(&limiter, "X-Long: " + String(repeating: "a", count: 60)) == .tooLarge)
    }

    @Test func bodyAfterHeadIsNotCountedUntilNextRequest() {
        var limiter = RequestHeadLimiter(limit: 40)
        #expect(self.feed(&limiter, "GET / HTTP/1.1\r\nHost: a\r\n\r\n" + String(repeating: "b", count: 100)) == .withinLimit)
        limiter.requestEnded()
        #expect(self.feed(&limiter, String(repeating: "c", count: 41)) == .tooLarge)
    }

    @Test func terminatorSplitAcrossReads() {
        var limiter = RequestHeadLimiter(limit: 30)
        #expect(self.feed(&limiter, "GET / HTTP/1.1\r\nHost: a\r\n\r") == .withinLimit)
        #expect(self.feed(&limiter, "\n" + String(repeating: "x", count: 100)) == .withinLimit)
    }
}
