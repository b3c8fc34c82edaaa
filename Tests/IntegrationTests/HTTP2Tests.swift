import Foundation
import NIOCore
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
