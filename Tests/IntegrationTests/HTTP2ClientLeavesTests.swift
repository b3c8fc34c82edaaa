import NIOCore
import NIOPosix
import Testing
@testable import WSGate

/// HTTP/2 clients that open WebSocket streams and leave (reset the stream, reset or close the
/// connection) while the backends are being opened: whatever the moment, no backend connection
/// outlives its client. The 200 that opens a stream's relay could close that stream as it went
/// (nghttp2 reporting a reset, or the write failing), before the relay's leg was the stream's, so
/// the leg never heard: its session and backend connection lived on until the idle timeout (the
/// chaos soak's "+2 descriptors", up to +9 with the debug build).
@Suite(.timeLimit(.minutes(2))) struct HTTP2ClientLeavesTests {
    @Test(arguments: ["/ws", "/tcp"])
    func noBackendConnectionOutlivesItsClient(path: String) async throws {
        var server = GatewayFixture.patientServer
        server.closeTimeout = .seconds(2)
        let fixture = try await GatewayFixture.start(server: server) { ws, tcp in
            [RouteConfiguration(path: "/ws", backend: .webSocket(host: "127.0.0.1", port: ws, path: nil, query: nil)),
             RouteConfiguration(path: "/tcp", backend: .tcp(host: "127.0.0.1", port: tcp))]
        }
        defer { Task { await fixture.stop() } }
        let backend = path == "/ws" ? fixture.wsEchoPort : fixture.tcpEchoPort
        let run = try await Peers.run(try Peers.python, [Peers.script("h2_connect_and_leave.py"), "127.0.0.1", String(fixture.port), path,
                                                         "--connections", "150", "--seed", path == "/ws" ? "4" : "3"], timeout: 90)
        #expect(run.output.contains("left 150"), "\(run.output)")
        // Every session whose client left ends within close_timeout of it; a leaked one lasts an hour.
        try await eventually("the gateway to let go of every session and backend connection", timeout: .seconds(20)) {
            GatewayProcess.establishedLoopback(toPort: backend).isEmpty && fixture.gateway.activeSessions == 0
        }
    }
}
