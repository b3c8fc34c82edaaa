import DemoBackends
import Foundation
import NIOCore
import NIOPosix
import Testing
@testable import WSGate

/// Session recording through a real `wsgate` process, read back with `wsgate replay`.
@Suite(.timeLimit(.minutes(3))) struct RecordingTests {
    static func directory() throws -> URL {
        let url = Scratch.path("wsgate-rec")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    static func recordings(_ directory: URL) -> [URL] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []).filter { $0.hasSuffix(".wsrec.jsonl") }.sorted().map { directory.appendingPathComponent($0) }
    }

    static func entries(_ file: URL) throws -> [RecordingEntry] {
        let text = try String(contentsOf: file, encoding: .utf8)
        return try text.split(separator: "\n").enumerated().map { try RecordingEntry.parse($0.element, number: $0.offset + 1) }
    }

    static func finished(_ directory: URL, count: Int) async throws {
        try await eventually("\(count) finished recordings") {
            let files = Self.recordings(directory)
            return files.count == count && files.allSatisfy { ((try? String(contentsOf: $0, encoding: .utf8)) ?? "").contains("{\"end\":") }
        }
    }

    @Test func aWebSocketSessionIsRecordedPieceByPieceAndReplays() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { group.shutdownGracefully { _ in } }
        let echo = try await WebSocketEchoServer.start(host: "127.0.0.1", port: 0, group: group)
        defer { echo.close(promise: nil) }
        let directory = try Self.directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let (gateway, _) = try await LifecycleTests.start("record-ws", """
            listeners: [{address: "127.0.0.1:0"}]
            routes:
              - {path: /echo, backend: "ws://127.0.0.1:\(echo.localAddress!.port!)/", record: "\(directory.path)"}
            """)
        defer { gateway.stop() }

        let (client, _) = try await TestClient.webSocket(port: gateway.port, path: "/echo", group: group)
        try await client.sendFrame(1, Array("héllo\nworld".utf8))
        #expect(try await client.readMessage().text == "héllo\nworld")
        try await client.sendFrame(2, [0, 1, 2, 255])
        #expect(try await client.readMessage().payload == [0, 1, 2, 255])
        // A fragmented text message, split inside "é": pieces that are not UTF-8 alone.
        let bytes = Array("ab é cd".utf8)
        try await client.sendFrame(1, Array(bytes[..<4]), fin: false)
        try await client.sendFrame(0, Array(bytes[4...]), fin: true)
        #expect(try await client.readMessage().text == "ab é cd")
        try await client.sendClose(1000)
        _ = try await client.readFrame()
        await client.close()

        try await Self.finished(directory, count: 1)
        let file = Self.recordings(directory)[0]
        #expect(file.lastPathComponent.contains("-echo-"))
        let attributes = try FileManager.default.attributesOfItem(atPath: file.path)
        #expect((attributes[.posixPermissions] as? Int) == 0o600, "recordings are private")
        let entries = try Self.entries(file)
        guard case .header(let header) = entries.first else { Issue.record("no header"); return }
        #expect(header.route == "/echo" && header.clientProtocol == "http/1.1" && header.client.hasPrefix("127.0.0.1:"))
        let pieces = entries.compactMap { entry -> (RecordingEntry.Direction, Bool, [UInt8], Bool)? in
            if case .piece(_, let direction, let isText, let payload, let ends) = entry { return (direction, isText, payload, ends) }
            return nil
        }
        // Each message went out and came back; put the pieces of each direction together again.
        for direction in [RecordingEntry.Direction.clientToBackend, .backendToClient] {
            var messages: [[UInt8]] = [], current: [UInt8] = []
            for piece in pieces where piece.0 == direction {
                current += piece.2
                if piece.3 { messages.append(current); current = [] }
            }
            #expect(messages == [Array("héllo\nworld".utf8), [0, 1, 2, 255], bytes], "\(direction)")
        }
        #expect(pieces.first { $0.2 == [0, 1, 2, 255] }?.1 == false, "binary is binary")
        guard case .end(_, let code, let closedBy, let lost) = entries.last else { Issue.record("no end line"); return }
        #expect(code == 1000 && closedBy == "client" && lost == 0)

        let replay = try await GatewayProcess.run(["replay", file.path])
        #expect(replay.status == 0)
        let lines = replay.output.split(separator: "\n")
        #expect(lines.first?.hasPrefix("recording of /echo → ws://127.0.0.1:") == true, "\(replay.output)")
        #expect(lines.contains { $0.hasSuffix("→ text    héllo⏎world") }, "\(replay.output)")
        #expect(lines.contains { $0.hasSuffix("← binary  4 bytes  00 01 02 ff") }, "\(replay.output)")
        #expect(lines.contains { $0.hasSuffix("← text    ab é cd") }, "\(replay.output)")
        #expect(lines.last?.contains("end: close code 1000 by client") == true)
        // The bytes exactly (as hex: they are not all UTF-8).
        let raw = try await Peers.run(URL(fileURLWithPath: "/bin/sh"), ["-c", "\"$0\" replay --raw --direction client \"$1\" | od -An -v -tx1", try GatewayProcess.executable.path, file.path])
        let hex = (Array("héllo\nworld".utf8) + [0, 1, 2, 255] + bytes).map { String(format: "%02x", $0) }
        #expect(raw.output.split(whereSeparator: \.isWhitespace).map(String.init) == hex, "\(raw.output)")
        let broken = directory.appendingPathComponent("broken.jsonl")
        try "{\"format\":\"wsgate-recording\",\"version\":1}\n[1,\"?\",\"t\",\"x\",1]\n".write(to: broken, atomically: true, encoding: .utf8)
        let refused = try await GatewayProcess.run(["replay", broken.path])
        #expect(refused.status == 1 && refused.output.contains("line 2:"), "\(refused.output)")
    }

    @Test func filesAreBoundedAndTheDirectoryRotated() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { group.shutdownGracefully { _ in } }
        let echo = try await TCPServices.startEcho(host: "127.0.0.1", port: 0, group: group)
        defer { echo.close(promise: nil) }
        let directory = try Self.directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let (gateway, _) = try await LifecycleTests.start("record-tcp", """
            listeners: [{address: "127.0.0.1:0"}]
            routes:
              - path: /tcp
                backend: "tcp://127.0.0.1:\(echo.localAddress!.port!)"
                record: {directory: "\(directory.path)", max_file_bytes: 8KiB, max_files: 2}
            """)
        defer { gateway.stop() }

        for session in 0..<3 {
            let (client, _) = try await TestClient.webSocket(port: gateway.port, path: "/tcp", group: group)
            // 20 KiB each way: more than the file may hold; the session itself is unaffected.
            for _ in 0..<5 {
                let chunk = pattern(4096, seed: session)
                try await client.sendFrame(2, chunk)
                var echoed: [UInt8] = []
                while echoed.count < chunk.count { echoed += try await client.readMessage().payload }
                #expect(echoed == chunk)
            }
            try await client.sendClose(1000)
            _ = try await client.readFrame()
            await client.close()
            try await Self.finished(directory, count: min(session + 1, 2))
        }
        let files = Self.recordings(directory)
        #expect(files.count == 2, "max_files keeps the newest two")
        for file in files {
            let size = try FileManager.default.attributesOfItem(atPath: file.path)[.size] as? Int ?? 0
            #expect(size <= 8192, "\(size) bytes")
            let entries = try Self.entries(file)
            #expect(entries.contains { if case .truncated = $0 { return true } else { return false } })
            guard case .end = entries.last else { Issue.record("the end line is kept after a truncation"); continue }
        }
    }
}
