import DemoBackends
import Foundation
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
