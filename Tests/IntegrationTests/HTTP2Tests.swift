import Foundation
import NIOCore
import NIOPosix
import Testing
@testable import WSGate

struct StreamResult: Decodable, Equatable {
    var path: String
    var status: String?
    var echo: String?
    var close: Int?
}

func streamResults(_ output: String) -> [String: StreamResult] {
    var results: [String: StreamResult] = [:]
    for line in output.split(separator: "\n") where line.hasPrefix("{") {
        if let result = try? JSONDecoder().decode(StreamResult.self, from: Data(line.utf8)) { results[result.path] = result }
    }
    return results
}

@Suite(.timeLimit(.minutes(2))) struct HTTP2Tests {
    @Test func extendedConnectStreamsShareOneConnection() async throws {
        let fixture = try await GatewayFixture.standard()
        defer { Task { await fixture.stop() } }
        let run = try await Peers.run(try Peers.python, [Peers.script("h2_websocket.py"), "127.0.0.1", String(fixture.port), "/ws", "/ws/second", "/tcp", "/nothing"])
        #expect(run.output.contains("OK 4"), "\(run.output)")
        let results = streamResults(run.output)
        #expect(results["/ws"] == StreamResult(path: "/ws", status: "200", echo: "hello /ws", close: 1000))
        #expect(results["/ws/second"] == StreamResult(path: "/ws/second", status: "200", echo: "hello /ws/second", close: 1000))
        #expect(results["/tcp"] == StreamResult(path: "/tcp", status: "200", echo: "hello /tcp", close: 1000))
        #expect(results["/nothing"]?.status == "404")
    }

    @Test func backendFailuresAreStreamErrorsOnly() async throws {
        let fixture = try await GatewayFixture.start { ws, _ in
            [
                RouteConfiguration(path: "/ws", backend: .webSocket(host: "127.0.0.1", port: ws, path: nil, query: nil)),
                RouteConfiguration(path: "/down", backend: .tcp(host: "127.0.0.1", port: 1)),
            ]
        }
        defer { Task { await fixture.stop() } }
        let run = try await Peers.run(try Peers.python, [Peers.script("h2_websocket.py"), "127.0.0.1", String(fixture.port), "/down", "/ws"])
        let results = streamResults(run.output)
        #expect(results["/down"]?.status == "502", "\(run.output)")
        #expect(results["/ws"] == StreamResult(path: "/ws", status: "200", echo: "hello /ws", close: 1000))
    }

    @Test func aStalledBackendHoldsOnlyItsOwnStream() async throws {
        // A service that accepts and never reads: its stream must stop at its flow-control window
        // while the other streams on the same connection carry on.
        let group = MultiThreadedEventLoopGroup.singleton
        let stalled = try await ServerBootstrap(group: group)
            .childChannelOption(.autoRead, value: false)
            .childChannelInitializer { $0.eventLoop.makeSucceededVoidFuture() }
            .bind(host: "127.0.0.1", port: 0).get()
        defer { Task { try? await stalled.close() } }
        let fixture = try await GatewayFixture.start(extraBackends: [stalled]) { ws, _ in
            [
                RouteConfiguration(path: "/ws", backend: .webSocket(host: "127.0.0.1", port: ws, path: nil, query: nil)),
                RouteConfiguration(path: "/stalled", backend: .tcp(host: "127.0.0.1", port: stalled.localAddress!.port!)),
            ]
        }
        defer { Task { await fixture.stop() } }
        let total = 64 << 20
        let run = try await Peers.run(try Peers.python, [Peers.script("h2_websocket.py"), "127.0.0.1", String(fixture.port), "--flood", "/stalled", String(total), "/ws", "/ws/2", "/ws/3"])
        let results = streamResults(run.output)
        for path in ["/ws", "/ws/2", "/ws/3"] {
            #expect(results[path] == StreamResult(path: path, status: "200", echo: "hello \(path)", close: 1000), "\(run.output)")
        }
        let floodLine = try #require(run.output.split(separator: "\n").first { $0.contains("\"flood\"") })
        struct Flood: Decodable { var open: Bool; var sent: Int }
        let flood = try JSONDecoder().decode(Flood.self, from: Data(floodLine.utf8))
        #expect(flood.open)
        // The window (64 KiB) plus what the socket buffers took, nowhere near the 64 MiB offered.
        #expect(flood.sent < 16 << 20, "\(flood.sent) bytes got through to a backend that reads nothing")
        print("h2 flow control: \(flood.sent) of \(total) bytes accepted on the stalled stream; other streams completed")
    }

    /// A client that ends its side (END_STREAM) while its backend is still being opened is going
    /// away as much as one that ends it once the session runs: what it sent first is delivered,
    /// then the session ends and the backend connection closes. That END_STREAM used to be dropped
    /// when it came before the relay existed, leaving the session and its backend socket open.
    @Test(arguments: [false, true])
    func aClientEndingItsSideEndsTheSession(afterOpen: Bool) async throws {
        let recorder = RecordingHandler()
        let service = try await TestServices.start(group: MultiThreadedEventLoopGroup.singleton) { recorder }
        let fixture = try await GatewayFixture.start(extraBackends: [service]) { _, _ in
            [RouteConfiguration(path: "/svc", backend: .tcp(host: "127.0.0.1", port: service.localAddress!.port!))]
        }
        defer { Task { await fixture.stop() } }
        let run = try await Peers.run(try Peers.python, [Peers.script("h2_end_early.py"), "127.0.0.1", String(fixture.port), "/svc", "bye", "--wait", "20"]
                                      + (afterOpen ? ["--after-open"] : []))
        #expect(run.output.contains("\"status\": \"200\""), "\(run.output)")
        #expect(run.output.contains("\"ended\": true"), "\(run.output)")
        try await eventually("the service to get the message, then EOF", timeout: .seconds(20)) {
            recorder.received.withLockedValue { $0.eof && $0.bytes == Array("bye".utf8) }
        }
        try await eventually("the session to end") { fixture.gateway.activeSessions == 0 }
    }

    @Test func idleConnectionsAreClosedWithGoAway() async throws {
        let fixture = try await GatewayFixture.withHandshakeTimeout(.seconds(1))
        defer { Task { await fixture.stop() } }
        let started = NIODeadline.now()
        let client = try await Self.h2Client(port: fixture.port, group: fixture.group)
        try await client.waitForEOF(timeout: .seconds(20))
        #expect(NIODeadline.now() - started >= .seconds(1))
        #expect(Self.receivedGoAway(client))
    }

    /// One request, then silence: the connection, once its stream is gone, idles out like any other.
    /// A request whose client side never ends (HEADERS without END_STREAM) gets its answer and
    /// then RST_STREAM(NO_ERROR) (RFC 9113 §8.1); a half-open stream used to keep the connection
    /// forever. And a stream closed by the gateway's own answer counts as closed at once: it used
    /// to be noticed only on the client's next bytes, which a silent client never sent.
    @Test(arguments: [false, true])
    func aConnectionWithOneAnsweredRequestIdlesOut(clientEndsTheRequest: Bool) async throws {
        let fixture = try await GatewayFixture.withHandshakeTimeout(.seconds(1))
        defer { Task { await fixture.stop() } }
        let run = try await Peers.run(try Peers.python, [Peers.script("h2_half_open.py"), "127.0.0.1", String(fixture.port), "/healthz", "--wait", "20"]
                                      + (clientEndsTheRequest ? ["--end-stream"] : []))
        #expect(run.output.contains("\"status\": \"200\""), "\(run.output)")
        #expect(run.output.contains("\"reset\": 0") == !clientEndsTheRequest, "\(run.output)")
        #expect(run.output.contains("\"goaway\"") && run.output.contains("\"closed\""), "\(run.output)")
    }

    @Test func shutdownSendsGoAway() async throws {
        let fixture = try await GatewayFixture.standard()
        defer { Task { await fixture.stop() } }
        let client = try await Self.h2Client(port: fixture.port, group: fixture.group)
        try await eventually("the HTTP/2 connection to be registered") { fixture.gateway.activeSessions == 1 }
        await fixture.gateway.shutdown()
        try await client.waitForEOF(timeout: .seconds(20))
        #expect(Self.receivedGoAway(client))
    }

    /// Sends the connection preface and an empty SETTINGS frame as soon as connected (from the
    /// event loop, so test-task scheduling cannot delay it), then nothing.
    static func h2Client(port: Int, group: EventLoopGroup) async throws -> TestClient {
        try await TestClient.connect(port: port, group: group, sendingFirst: Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8) + [0, 0, 0, 4, 0, 0, 0, 0, 0])
    }

    /// Whether the gateway sent a GOAWAY frame (length 8, type 7, stream 0).
    static func receivedGoAway(_ client: TestClient) -> Bool {
        let received = client.inbox.state.withLockedValue { Array($0.buffer.readableBytesView) }
        return received.indices.contains { i in
            i + 9 <= received.count && received[i..<(i + 3)] == [0, 0, 8] && received[i + 3] == 7 && received[(i + 5)..<(i + 9)].allSatisfy { $0 == 0 }
        }
    }

    @Test func plainRequestsGetTheHTTP1Answers() async throws {
        let fixture = try await GatewayFixture.standard()
        defer { Task { await fixture.stop() } }
        let nghttp = try Peers.which("nghttp")
        for (path, status) in [("/healthz", "200"), ("/nothing", "404"), ("/ws", "426")] {
            let run = try await Peers.run(nghttp, ["-nv", "http://127.0.0.1:\(fixture.port)\(path)"])
            #expect(run.output.contains(":status: \(status)"), "\(path): \(run.output.suffix(400))")
        }
        // HTTP/1.1 still works on the same listener.
        let client = try await fixture.raw()
        try await client.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(try await client.readResponse().0 == 200)
    }
}
