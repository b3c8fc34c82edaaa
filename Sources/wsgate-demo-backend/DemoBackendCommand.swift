import ArgumentParser
import DemoBackends
import NIOPosix

/// The services behind `examples/demo.yaml`: a WebSocket echo and a line-oriented TCP service.
@main
struct DemoBackendCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wsgate-demo-backend",
        abstract: "Demo services for wsgate: a WebSocket echo and a line-oriented TCP service."
    )

    @Option(help: "Address for both services.")
    var host = "127.0.0.1"

    @Option(help: "WebSocket echo port.")
    var wsPort = 9001

    @Option(help: "Line-oriented TCP service port.")
    var tcpPort = 9002

    @Option(help: "Plain TCP echo port (0 = off).")
    var echoPort = 0

    func run() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let ws = try await WebSocketEchoServer.start(host: self.host, port: self.wsPort, group: group)
        let lines = try await TCPServices.startLineService(host: self.host, port: self.tcpPort, group: group)
        print("WebSocket echo on ws://\(self.host):\(self.wsPort)/, line service on tcp://\(self.host):\(self.tcpPort)")
        if self.echoPort != 0 {
            _ = try await TCPServices.startEcho(host: self.host, port: self.echoPort, group: group)
            print("TCP echo on tcp://\(self.host):\(self.echoPort)")
        }
        try await ws.closeFuture.get()
        try await lines.closeFuture.get()
    }
}
