import DemoBackends
import Foundation
import NIOCore
import NIOPosix
import Testing

/// Attacks that try to make a `wsgate` process hold memory or descriptors without bound (issue 22),
/// each against a process of its own so its memory is the gateway's alone.
@Suite(.timeLimit(.minutes(2))) struct ExhaustionTests {
    /// HPACK bomb: 500 requests whose header blocks decode to 4 MB each from a few KB on the wire.
    /// Each is answered 431 as its fields are dropped while decoding; the process's peak memory
    /// barely moves (it grew by gigabytes when decoded headers were kept), and a WebSocket over
    /// HTTP/2 still works afterwards.
    @Test func hpackBombIsRefusedWithoutHoldingTheDecodedHeaders() async throws {
        let echo = try await WebSocketEchoServer.start(host: "127.0.0.1", port: 0, group: MultiThreadedEventLoopGroup.singleton)
        defer { Task { try? await echo.close() } }
        let gateway = try GatewayProcess(arguments: ["--listen", "127.0.0.1:0", "--route", "/ws=ws://127.0.0.1:\(echo.localAddress!.port!)", "--threads", "1"])
        defer { gateway.stop() }
        try await gateway.waitUntilListening()
        let before = gateway.peakResidentBytes

        let bomb = try await Peers.run(try Peers.python, [Peers.script("h2_hpack_bomb.py"), "127.0.0.1", String(gateway.port), "--streams", "100", "--references", "1000", "--rounds", "5"], timeout: 60)
        #expect(bomb.output.contains("{\"431\": 500}"), "\(bomb.output)")
        let growth = gateway.peakResidentBytes - before
        print("HPACK bomb: 500 header blocks of ~4 MB decoded; peak RSS \(before >> 20) → \(gateway.peakResidentBytes >> 20) MiB")
        #expect(growth < 16 << 20, "peak RSS grew by \(growth >> 20) MiB")

        let run = try await Peers.run(try Peers.python, [Peers.script("h2_websocket.py"), "127.0.0.1", String(gateway.port), "/ws"])
        #expect(run.output.contains("OK 1") && run.output.contains("\"echo\": \"hello /ws\""), "\(run.output)")
        #expect(gateway.log.contains("request header list larger than 16384 bytes"))
    }

    /// A client that pings without reading, over HTTP/1.1 (64 MB of pings) and over an HTTP/2
    /// stream (8 MB; the Python client is slower there): each ping is answered once the client
    /// reads again (only the latest needs a pong), so the gateway holds at most one pong, not one
    /// per ping (HTTP/1.1 peak RSS grew by 60 MiB here before, 3 GiB in a longer run).
    @Test(arguments: [false, true])
    func pingsFromAClientThatDoesNotReadAreNotQueued(h2: Bool) async throws {
        let echo = try await WebSocketEchoServer.start(host: "127.0.0.1", port: 0, group: MultiThreadedEventLoopGroup.singleton)
        defer { Task { try? await echo.close() } }
        let gateway = try GatewayProcess(arguments: ["--listen", "127.0.0.1:0", "--route", "/ws=ws://127.0.0.1:\(echo.localAddress!.port!)", "--threads", "1"])
        defer { gateway.stop() }
        try await gateway.waitUntilListening()
        let before = gateway.peakResidentBytes

        let flood = try await Peers.run(try Peers.python, [Peers.script("ping_flood.py"), "127.0.0.1", String(gateway.port), "/ws", "--megabytes", h2 ? "8" : "64"] + (h2 ? ["--h2"] : []), timeout: 60)
        #expect(flood.output.contains("sent "), "\(flood.output)")
        let growth = gateway.peakResidentBytes - before
        print("ping flood over \(h2 ? "HTTP/2" : "HTTP/1.1"): \(flood.output.trimmingCharacters(in: .whitespacesAndNewlines)); peak RSS \(before >> 20) → \(gateway.peakResidentBytes >> 20) MiB")
        #expect(growth < 16 << 20, "peak RSS grew by \(growth >> 20) MiB")

        let (client, _) = try await TestClient.webSocket(port: gateway.port, path: "/ws", group: MultiThreadedEventLoopGroup.singleton)
        try await client.sendFrame(1, Array("still here".utf8))
        #expect(try await client.readMessage().text == "still here")
        await client.close()
    }
}
