import DemoBackends
import Foundation
import NIOCore
import NIOPosix
import Testing

/// Headless Chromium against the gateway binary: over TLS it rides HTTP/2 (RFC 8441), over plain
/// HTTP it uses HTTP/1.1; the session log line says which, and the echo must work both ways —
/// compressed, since Chromium offers permessage-deflate and the route has it on.
@Suite(.timeLimit(.minutes(2))) struct BrowserTests {
    @Test(arguments: [true, false])
    func chromiumRoundTrip(tls: Bool) async throws {
        let certificates = try await TestCertificates.make()
        defer { certificates.remove() }
        let echo = try await WebSocketEchoServer.start(host: "127.0.0.1", port: 0, group: MultiThreadedEventLoopGroup.singleton)
        defer { Task { try? await echo.close() } }
        var arguments = ["--listen", "127.0.0.1:0", "--route", "/ws=ws://127.0.0.1:\(echo.localAddress!.port!)", "--threads", "1", "--compression"]
        if tls { arguments += ["--cert", certificates.certificate(), "--key", certificates.key()] }
        let gateway = try await GatewayProcess(arguments: arguments)
        defer { gateway.stop() }
        try await gateway.waitUntilListening()

        let origin = "\(tls ? "https" : "http")://localhost:\(gateway.port)"
        let run = try await Peers.run(try Peers.python, [Peers.script("chromium_ws.py"), origin, "/ws", "hello from chromium"], timeout: 90)
        #expect(run.output.contains("ECHO: hello from chromium EXTENSIONS: permessage-deflate"), "\(run.output)")

        try await eventually("the session's log line") { gateway.log.contains("session ended") }
        let line = gateway.log.split(separator: "\n").first { $0.contains("session ended") } ?? ""
        let expected = tls ? "protocol=h2" : "protocol=http/1.1"
        print("chromium over \(tls ? "TLS" : "plain HTTP"): \(line.contains("protocol=h2") ? "HTTP/2 (RFC 8441)" : "HTTP/1.1")")
        #expect(line.contains(expected), "\(line)")
        #expect(line.contains("close_code=1000"))
    }
}
