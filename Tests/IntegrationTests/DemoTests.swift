import Foundation
import NIOCore
import Testing

/// The demo as a user meets it: `examples/demo/demo.yaml` as shipped (on free ports), the demo
/// services, and headless Chromium using the page wsgate serves. The screenshot is kept in
/// `.build/test-artifacts/demo.png`.
@Suite(.timeLimit(.minutes(2))) struct DemoTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    struct PageSnapshot: Decodable {
        var console: String
        var echo: String
        var instance: String
        var chat: [String]
        var echoes: [String]
        var replies: [String]
        var system: [String]
        var sent: [String]
        var errors: [String]
        var rttCount: Int
        var messagesIn: Int
        var messagesOut: Int
        var compression: String
    }

    @Test func chromiumUsesTheDemoPageThroughTheGateway() async throws {
        let (backend, ports) = try await GatewayProcess.demoBackend()
        defer { backend.stop() }
        let gateway = try await GatewayProcess(arguments: ["--config", Self.repository.appendingPathComponent("examples/demo/demo.yaml").path, "--log-level", "info"], environment: [
            "DEMO_PORT": "0", "DEMO_ADMIN_PORT": "0",
            "ECHO_PORT": "\(ports["websocket"] ?? 0)", "CONSOLE_A_PORT": "\(ports["console-a"] ?? 0)", "CONSOLE_B_PORT": "\(ports["console-b"] ?? 0)",
        ])
        defer { gateway.stop() }
        try await gateway.waitUntilListening()

        let artifacts = Self.repository.appendingPathComponent(".build/test-artifacts")
        try FileManager.default.createDirectory(at: artifacts, withIntermediateDirectories: true)
        let screenshot = artifacts.appendingPathComponent("demo.png")
        try? FileManager.default.removeItem(at: screenshot)
        let run = try await Peers.run(try Peers.python, [Peers.script("chromium_demo.py"), "http://127.0.0.1:\(gateway.port)", screenshot.path], timeout: 90)
        let json = run.output.split(separator: "\n").first { $0.hasPrefix("RESULT: ") }?.dropFirst("RESULT: ".count)
        let result = try #require(json, "\(run.output)")
        let page = try JSONDecoder().decode(PageSnapshot.self, from: Data(result.utf8))

        #expect(page.console == "open" && page.echo == "open")
        #expect(["console-a", "console-b"].contains(page.instance), "the pool's instance is shown: \(page.instance)")
        let greeting = try #require(page.system.first { $0.hasPrefix("connected to \(page.instance) as ") }, "\(page.system)")
        let name = String(greeting.dropFirst("connected to \(page.instance) as ".count).prefix { $0 != "." })
        #expect(page.sent == ["/time", "hello from chromium", "/who"])
        #expect(page.chat == ["<\(name)> hello from chromium"], "the room said it back to everyone, us included")
        #expect(page.system.allSatisfy { !$0.contains(" left") }, "health checks are not announced: \(page.system)")
        #expect(page.replies.contains { $0.hasPrefix("time: 20") })
        #expect(page.replies.contains { $0.hasPrefix("who: 1 online — \(name) (\(page.instance))") }, "\(page.replies)")
        #expect(page.echoes == ["echo from chromium"])
        #expect(page.errors.isEmpty, "\(page.errors)")
        #expect(page.rttCount >= 20)
        // Out: 3 console lines, 3 + 20 pings and one text to the echo. In: the 24 echoes and, with
        // `framing: lines`, one message per console line, however the service's bytes were read.
        let consoleLines = page.system.count + page.chat.count + page.replies.count
        #expect(page.messagesOut == 27 && page.messagesIn == 24 + consoleLines, "\(page.messagesOut) out, \(page.messagesIn) in, \(consoleLines) console lines")
        #expect(page.compression == "permessage-deflate")
        let png = try Data(contentsOf: screenshot)
        #expect(png.count > 20_000 && png.starts(with: [0x89, 0x50, 0x4E, 0x47]), "a real screenshot, not a blank page")
        print("demo screenshot: \(screenshot.path) (\(png.count) bytes)")

        // A viewer tab watched the console; the first tab reloaded and resumed its session.
        let resumedJSON = try #require(run.output.split(separator: "\n").first { $0.hasPrefix("RESUMED: ") }?.dropFirst("RESUMED: ".count), "\(run.output)")
        let tabs = try JSONDecoder().decode([String: PageSnapshot].self, from: Data(resumedJSON.utf8))
        let owner = try #require(tabs["owner"])
        let viewer = try #require(tabs["viewer"])
        #expect(owner.system.filter { $0.hasPrefix("connected to ") }.count == 1, "one service connection across the reload: \(owner.system)")
        #expect(owner.system.contains { $0.hasPrefix("resumed the session after line ") }, "\(owner.system)")
        #expect(owner.chat == ["<\(name)> hello from chromium", "<\(name)> after the reload"], "the lines before the reload kept, the service's connection the same")
        #expect(owner.replies.filter { $0.hasPrefix("who: 1 online — \(name) (\(page.instance))") }.count == 2, "\(owner.replies)")
        #expect(viewer.chat == ["<\(name)> hello from chromium", "<\(name)> after the reload"], "the viewer got the recent lines, then the live ones")
        #expect(viewer.sent.isEmpty && viewer.errors.isEmpty)

        // What the gateway saw: the page and its scripts as files, then the WebSocket sessions. The
        // browser is gone, and its console's service connection is held for a resume.
        try await eventually("the sessions' log lines") { gateway.log.components(separatedBy: "session ended").count - 1 >= 4 }
        #expect(gateway.log.contains("route=/console") && gateway.log.contains("route=/echo"))
        try await eventually("the console held for a resume") {
            gateway.log.components(separatedBy: "session held for a resume").count - 1 >= 2
        }
    }
}
