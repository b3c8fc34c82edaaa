import DemoBackends
import Foundation
import NIOCore
import NIOPosix
import Testing
@testable import WSGate

/// `server.keepalive` on a real `wsgate` process, read back from the kernel's socket table: the
/// gateway's ends of client and backend connections carry a keepalive timer due within `idle`,
/// and none with `idle: off`.
@Suite(.timeLimit(.minutes(3))) struct KeepaliveTests {
    /// The gateway's ends: accepted on its port, or connected to one of the backends (its own
    /// sockets only: the table lists every process's, and another test's may share a port number
    /// on another address).
    static func gatewaySockets(_ gateway: GatewayProcess, backends: [Int]) -> (clients: [GatewayProcess.TCPSocket], backends: [GatewayProcess.TCPSocket]) {
        let established = gateway.ownTCPSockets().filter { $0.state == "01" }
        return (established.filter { $0.localPort == gateway.port }, established.filter { backends.contains($0.remotePort ?? -1) })
    }

    /// Ticks (1/100 s) until the keepalive timer fires; nil when it is not the keepalive timer.
    static func keepaliveDue(_ socket: GatewayProcess.TCPSocket) -> Int? {
        let parts = socket.timer.split(separator: ":")
        guard parts.count == 2, parts[0] == "02" else { return nil }
        return Int(parts[1], radix: 16)
    }

    @Test func clientAndBackendConnectionsCarryTheConfiguredKeepalive() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { group.shutdownGracefully { _ in } }
        let echo = try await TCPServices.startEcho(host: "127.0.0.1", port: 0, group: group)
        defer { echo.close(promise: nil) }
        let wsEcho = try await WebSocketEchoServer.start(host: "127.0.0.1", port: 0, group: group)
        defer { wsEcho.close(promise: nil) }
        let backends = [echo.localAddress?.port ?? 0, wsEcho.localAddress?.port ?? 0]

        for keepalive in ["{idle: 30s, interval: 5s, count: 3}", "{idle: off}"] {
            let config = Scratch.path("wsgate-keepalive", suffix: ".yaml")
            try """
                server: {keepalive: \(keepalive)}
                listeners: [{address: "127.0.0.1:0"}]
                routes:
                  - {path: /tcp, backend: "tcp://127.0.0.1:\(backends[0])"}
                  - {path: /ws, backend: "ws://127.0.0.1:\(backends[1])/"}
                """.write(to: config, atomically: true, encoding: .utf8)
            let gateway = try await GatewayProcess(arguments: ["--config", config.path, "--threads", "1"])
            defer { gateway.stop() }
            try await gateway.waitUntilListening()
            var clients: [TestClient] = []
            for path in ["/tcp", "/ws"] {
                let (client, _) = try await TestClient.webSocket(port: gateway.port, path: path, group: group)
                try await client.sendFrame(2, [1, 2, 3])
                #expect(try await client.readMessage().payload == [1, 2, 3])
                clients.append(client)
            }
            // A socket whose last segment is not acknowledged yet shows its retransmit timer ("01")
            // instead; the delayed ACKs come within a fraction of a second.
            var sockets = Self.gatewaySockets(gateway, backends: backends)
            let settled = NIODeadline.now() + .seconds(10)
            while (sockets.clients + sockets.backends).contains(where: { $0.timer.hasPrefix("01") }) && NIODeadline.now() < settled {
                try await Task.sleep(nanoseconds: 50_000_000)
                sockets = Self.gatewaySockets(gateway, backends: backends)
            }
            #expect(sockets.clients.count == 2 && sockets.backends.count == 2, "\(sockets)")
            for socket in sockets.clients + sockets.backends {
                let due = Self.keepaliveDue(socket)
                if keepalive == "{idle: off}" {
                    #expect(due == nil, "\(socket) \(socket.timer)")
                } else {
                    #expect(due.map { $0 > 0 && $0 <= 3000 } == true, "\(socket) \(socket.timer): keepalive due within 30 s")
                }
            }
            for client in clients { await client.close() }
        }
    }
}
