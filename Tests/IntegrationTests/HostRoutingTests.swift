import Foundation
import NIOCore
import NIOPosix
import Testing
@testable import WSGate

/// Host + path routing over the wire: `Host` on HTTP/1.1, `:authority` on HTTP/2.
@Suite(.timeLimit(.minutes(3))) struct HostRoutingTests {
    static func fixture() async throws -> GatewayFixture {
        let group = MultiThreadedEventLoopGroup.singleton
        var services: [Channel] = []
        for name in ["exact", "wildcard", "default"] {
            services.append(try await TestServices.start(group: group) { GreetAndEchoHandler(name) })
        }
        let ports = services.map { $0.localAddress!.port! }
        let fixture = try await GatewayFixture.start(extraBackends: services) { ws, _ in
            func route(_ host: String?, _ path: String, _ port: Int) -> RouteConfiguration {
                var route = RouteConfiguration(path: path, backend: .tcp(host: "127.0.0.1", port: port))
                route.host = host.flatMap(HostPattern.init(parsing:))
                return route
            }
            var echo = RouteConfiguration(path: "/echo", backend: .webSocket(host: "127.0.0.1", port: ws, path: nil, query: nil))
            echo.host = HostPattern(parsing: "chat.example.com")
            return [route(nil, "/", ports[2]), route("*.example.com", "/", ports[1]), route("app.example.com", "/app", ports[0]), echo]
        }
        return fixture
    }

    static func greeting(_ fixture: GatewayFixture, path: String, host: String) async throws -> String {
        let (client, _) = try await fixture.client(path, headers: ["Host: \(host)"])
        defer { Task { await client.close() } }
        return try await client.readMessage().text
    }

    @Test func http1RoutesOnHostThenPath() async throws {
        let fixture = try await Self.fixture()
        defer { Task { await fixture.stop() } }
        #expect(try await Self.greeting(fixture, path: "/app", host: "app.example.com") == "exact")
        #expect(try await Self.greeting(fixture, path: "/app/x", host: "APP.example.com:8080") == "exact")
        #expect(try await Self.greeting(fixture, path: "/other", host: "app.example.com") == "wildcard")
        #expect(try await Self.greeting(fixture, path: "/app", host: "www.example.com") == "wildcard")
        #expect(try await Self.greeting(fixture, path: "/app", host: "example.com") == "default")
        #expect(try await Self.greeting(fixture, path: "/app", host: "127.0.0.1") == "default")

        // A host-only route is not there for other hosts: /echo elsewhere goes to the default route.
        #expect(try await Self.greeting(fixture, path: "/echo", host: "other.test") == "default")
        let (chat, _) = try await fixture.client("/echo", headers: ["Host: chat.example.com"])
        try await chat.sendFrame(1, Array("hi".utf8))
        #expect(try await chat.readMessage().text == "hi")
        await chat.close()
    }

    @Test func http2RoutesOnAuthority() async throws {
        let fixture = try await GatewayFixture.start { ws, _ in
            var only = RouteConfiguration(path: "/ws", backend: .webSocket(host: "127.0.0.1", port: ws, path: nil, query: nil))
            only.host = HostPattern(parsing: "*.example.com")
            return [only]
        }
        defer { Task { await fixture.stop() } }
        let matched = try await Peers.run(try Peers.python, [Peers.script("h2_websocket.py"), "127.0.0.1", String(fixture.port), "--authority", "chat.example.com:443", "/ws"])
        #expect(streamResults(matched.output)["/ws"] == StreamResult(path: "/ws", status: "200", echo: "hello /ws", close: 1000), "\(matched.output)")
        let other = try await Peers.run(try Peers.python, [Peers.script("h2_websocket.py"), "127.0.0.1", String(fixture.port), "--authority", "example.org", "/ws"])
        #expect(streamResults(other.output)["/ws"]?.status == "404", "\(other.output)")
    }
}
