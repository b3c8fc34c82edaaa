import ArgumentParser
import DemoBackends
import Foundation
import NIOPosix

/// The services behind `examples/demo/demo.yaml`: two instances of a line-oriented chat console
/// (a pool behind one route) and a WebSocket echo.
@main
struct DemoBackendCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wsgate-demo-backend",
        abstract: "Demo services for wsgate: a line-oriented chat console (two instances) and a WebSocket echo."
    )

    @Option(help: "Address for every service.")
    var host = "127.0.0.1"

    @Option(help: "WebSocket echo port (0: any free port; the ports are printed).")
    var wsPort = 9001

    @Option(help: "First console instance's port.")
    var consoleAPort = 9002

    @Option(help: "Second console instance's port.")
    var consoleBPort = 9003

    @Option(help: "Plain TCP echo port (0: any free port; no echo unless given).")
    var echoPort: Int?

    func run() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let room = ConsoleRoom()
        let ws = try await WebSocketEchoServer.start(host: self.host, port: self.wsPort, group: group)
        let consoleA = try await room.start(instance: "console-a", host: self.host, port: self.consoleAPort, group: group)
        let consoleB = try await room.start(instance: "console-b", host: self.host, port: self.consoleBPort, group: group)
        print("websocket echo on ws://\(self.host):\(ws.localAddress!.port!)/")
        print("console-a on tcp://\(self.host):\(consoleA.localAddress!.port!)")
        print("console-b on tcp://\(self.host):\(consoleB.localAddress!.port!)")
        if let echoPort = self.echoPort {
            let echo = try await TCPServices.startEcho(host: self.host, port: echoPort, group: group)
            print("tcp echo on tcp://\(self.host):\(echo.localAddress!.port!)")
        }
        fflush(nil)  // every output stream: whoever started us may be waiting for the ports
        try await ws.closeFuture.get()
    }
}
