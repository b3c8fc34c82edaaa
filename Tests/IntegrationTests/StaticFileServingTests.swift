import Foundation
import NIOCore
import NIOPosix
import Testing
@testable import WSGate

/// Static routes over real sockets: files, conditional requests, traversal attempts sent raw (no
/// client library normalising them first), and the WebSocket on the same route still upgrading.
@Suite(.timeLimit(.minutes(3))) struct StaticFileServingTests {
    static let bigSize = 1_000_000

    /// web/{index.html, app.js, big.txt, sub/page.html}, and secret.txt next to web/.
    static func fixture() async throws -> (GatewayFixture, URL) {
        let base = Scratch.path("wsgate-static-it")
        let web = base.appendingPathComponent("web")
        try FileManager.default.createDirectory(at: web.appendingPathComponent("sub"), withIntermediateDirectories: true)
        try "<!doctype html><title>client</title>".write(to: web.appendingPathComponent("index.html"), atomically: true, encoding: .utf8)
        try "export const x = 1;\n".write(to: web.appendingPathComponent("app.js"), atomically: true, encoding: .utf8)
        try "page".write(to: web.appendingPathComponent("sub/page.html"), atomically: true, encoding: .utf8)
        try String(decoding: pattern(Self.bigSize).map { $0 % 26 + 97 }, as: UTF8.self).write(to: web.appendingPathComponent("big.txt"), atomically: true, encoding: .utf8)
        try "TOP SECRET".write(to: base.appendingPathComponent("secret.txt"), atomically: true, encoding: .utf8)
        let root = StaticFileLookup.resolve(web.path, within: "/")!
        let fixture = try await GatewayFixture.start { ws, _ in
            var app = RouteConfiguration(path: "/app", backend: .webSocket(host: "127.0.0.1", port: ws, path: nil, query: nil))
            app.staticFiles = StaticSettings(root: root)
            var files = RouteConfiguration(path: "/files", backend: .none)
            files.staticFiles = StaticSettings(root: root)
            files.servesWebSockets = false
            return [app, files]
        }
        return (fixture, base)
    }

    static func get(_ client: TestClient, _ path: String, _ headers: [String] = []) async throws -> (Int, [String: String], String) {
        try await client.send((["GET \(path) HTTP/1.1", "Host: gateway.test"] + headers).joined(separator: "\r\n") + "\r\n\r\n")
        return try await client.readResponse()
    }

    @Test func servesFilesWithTypesAndConditionalAnswersOnOneConnection() async throws {
        let (fixture, base) = try await Self.fixture()
        defer { Task { await fixture.stop(); try? FileManager.default.removeItem(at: base) } }
        let client = try await fixture.raw()
        let (status, headers, body) = try await Self.get(client, "/app/")
        #expect(status == 200)
        #expect(body == "<!doctype html><title>client</title>")
        #expect(headers["content-type"] == "text/html; charset=utf-8")
        #expect(headers["x-content-type-options"] == "nosniff")
        #expect(headers["cache-control"] == "no-cache")
        let etag = try #require(headers["etag"])

        let (notModified, headers304, body304) = try await Self.get(client, "/app/", ["If-None-Match: \(etag)"])
        #expect(notModified == 304 && body304.isEmpty)
        #expect(headers304["etag"] == etag)

        let js = try await Self.get(client, "/app/app.js?v=3")
        #expect(js.0 == 200 && js.1["content-type"] == "text/javascript; charset=utf-8" && js.2 == "export const x = 1;\n")

        let redirect = try await Self.get(client, "/app")
        #expect(redirect.0 == 301 && redirect.1["location"] == "/app/")
        #expect(try await Self.get(client, "/app/sub").1["location"] == "/app/sub/")
        #expect(try await Self.get(client, "/app/missing.css").0 == 404)

        // A megabyte, streamed in chunks, arrives whole.
        let big = try await Self.get(client, "/files/big.txt")
        #expect(big.0 == 200 && big.2.utf8.count == Self.bigSize && big.2 == String(decoding: pattern(Self.bigSize).map { $0 % 26 + 97 }, as: UTF8.self))

        try await client.send("HEAD /files/app.js HTTP/1.1\r\nHost: x\r\n\r\n")
        let (headStatus, headHeaders) = try await client.readHead()
        #expect(headStatus == 200 && headHeaders["content-length"] == "20")
        try await client.send("POST /files/app.js HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        let post = try await client.readResponse()
        #expect(post.0 == 405 && post.1["allow"] == "GET, HEAD")
        #expect(try await Self.get(client, "/files/sub/page.html").2 == "page", "the connection stayed usable throughout")
        await client.close()
    }

    @Test func aPipelinedRequestBehindAFileClosesTheConnectionAfterIt() async throws {
        let (fixture, base) = try await Self.fixture()
        defer { Task { await fixture.stop(); try? FileManager.default.removeItem(at: base) } }
        let client = try await fixture.raw()
        try await client.send("GET /files/big.txt HTTP/1.1\r\nHost: x\r\n\r\nGET /files/app.js HTTP/1.1\r\nHost: x\r\n\r\n")
        let (status, _, body) = try await client.readResponse()
        #expect(status == 200 && body.utf8.count == Self.bigSize, "the first response is whole")
        try await client.waitForEOF()
        await client.close()
    }

    /// Descriptors this process has open on `path` (the in-process gateway's files).
    static func openDescriptors(to path: String) -> Int {
        let descriptors = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        return descriptors.filter { (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\($0)")) == path }.count
    }

    @Test func aClientThatLeavesMidFileReleasesTheFile() async throws {
        let (fixture, base) = try await Self.fixture()
        defer { Task { await fixture.stop(); try? FileManager.default.removeItem(at: base) } }
        let big = StaticFileLookup.resolve(base.appendingPathComponent("web/big.txt").path, within: "/")!
        // HTTP/1.1: asks for a megabyte, reads none of it, hangs up.
        for _ in 0..<3 {
            let client = try await fixture.raw()
            try await client.send("GET /files/big.txt HTTP/1.1\r\nHost: x\r\n\r\n")
            _ = try await client.readHead()
            await client.close()
        }
        // HTTP/2: a stream whose window is full (the gateway waits for room), then the connection goes.
        let run = try await Peers.run(try Peers.python, [Peers.script("h2_get_and_drop.py"), "127.0.0.1", String(fixture.port), "/files/big.txt"])
        #expect(run.output.contains("DROPPED after"), "\(run.output)")
        try await eventually("the file closed after the clients left") { Self.openDescriptors(to: big) == 0 }
    }

    @Test func traversalAttemptsNeverReachAFileOutsideTheRoot() async throws {
        let (fixture, base) = try await Self.fixture()
        defer { Task { await fixture.stop(); try? FileManager.default.removeItem(at: base) } }
        let attempts = [
            "/files/../secret.txt", "/files/%2e%2e/secret.txt", "/files/%2E%2E/secret.txt", "/files/.%2e/secret.txt",
            "/files/..%2fsecret.txt", "/files/..%5csecret.txt", "/files/sub/..%2f..%2fsecret.txt", "/files/%2e%2e%2fsecret.txt",
            "/files/%252e%252e/secret.txt", "/files/%c0%ae%c0%ae/secret.txt", "/files/sub/../../secret.txt", "/files/.%2E/.%2E/secret.txt",
            "/files/secret.txt%00.html", "/files//../secret.txt", "/app/../files/../secret.txt",
        ]
        for path in attempts {
            let client = try await fixture.raw()
            let (status, _, body) = try await Self.get(client, path)
            #expect([400, 404].contains(status), "\(path) → \(status)")
            #expect(!body.contains("TOP SECRET"), "\(path) leaked the file")
            await client.close()
        }
        let hidden = try await fixture.raw()
        try ".env".write(to: base.appendingPathComponent("web/.env"), atomically: true, encoding: .utf8)
        #expect(try await Self.get(hidden, "/files/.env").0 == 404)
        #expect(try await Self.get(hidden, "/files/%2eenv").0 == 404)
        await hidden.close()
    }

    @Test func theRouteStillUpgradesAndAFilesOnlyRouteRefusesWebSockets() async throws {
        let (fixture, base) = try await Self.fixture()
        defer { Task { await fixture.stop(); try? FileManager.default.removeItem(at: base) } }
        let (ws, _) = try await fixture.client("/app")
        try await ws.sendFrame(1, Array("same origin".utf8))
        #expect(try await ws.readMessage().text == "same origin")
        await ws.close()

        let refused = try await fixture.raw()
        try await refused.send(TestClient.handshake(path: "/files/"))
        let (status, _, body) = try await refused.readResponse()
        #expect(status == 404 && body.contains("serves files, not WebSockets"))
        await refused.close()
    }

    @Test func http2GetsTheSameFiles() async throws {
        let (fixture, base) = try await Self.fixture()
        defer { Task { await fixture.stop(); try? FileManager.default.removeItem(at: base) } }
        let nghttp = try Peers.which("nghttp")
        // Without -v, nghttp writes the body alone to stdout.
        let run = try await Peers.run(nghttp, ["http://127.0.0.1:\(fixture.port)/files/big.txt"])
        #expect(run.status == 0)
        #expect(run.output.utf8.count == Self.bigSize)
        #expect(run.output == String(decoding: pattern(Self.bigSize).map { $0 % 26 + 97 }, as: UTF8.self))
        let head = try await Peers.run(nghttp, ["-nv", "http://127.0.0.1:\(fixture.port)/files/app.js"])
        #expect(head.output.contains(":status: 200") && head.output.contains("content-type: text/javascript; charset=utf-8"), "\(head.output.suffix(600))")
        for (path, status) in [("/files/../secret.txt", "400"), ("/files/%2e%2e/secret.txt", "400"), ("/files/.env", "404"), ("/app", "301")] {
            let answer = try await Peers.run(nghttp, ["-nv", "http://127.0.0.1:\(fixture.port)\(path)"])
            #expect(answer.output.contains(":status: \(status)"), "\(path): \(answer.output.suffix(300))")
        }
    }
}
