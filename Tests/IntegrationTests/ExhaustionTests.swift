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
}
