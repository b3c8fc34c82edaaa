import DemoBackends
import Logging
import NIOCore
import NIOPosix
@testable import WSGate

/// A gateway on a loopback port 0 in front of real backends (NIO's WebSocket echo, a TCP echo),
/// torn down by `stop()`.
final class GatewayFixture: @unchecked Sendable {
    let group: MultiThreadedEventLoopGroup
    let gateway: GatewayServer
    let port: Int
    let addresses: [SocketAddress]
    let wsEchoPort: Int
    let tcpEchoPort: Int
    private var backends: [Channel]

    static let logger: Logger = {
        var logger = Logger(label: "wsgate-test") { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = .warning
        return logger
    }()

    /// The defaults but a 60 s handshake timeout: with both cores busy beside the suite, this
    /// process (gateway and clients alike) has stalled for over 10 s, and a client whose request
    /// was not read in time found its connection closed. Tests of the timeout set their own.
    static var patientServer: ServerSettings {
        var server = ServerSettings()
        server.handshakeTimeout = .seconds(60)
        return server
    }

    /// `routes` gets the WebSocket echo port and the TCP echo port.
    static func start(
        server: ServerSettings = GatewayFixture.patientServer,
        listeners: [ListenerConfiguration] = [ListenerConfiguration(address: ListenAddress(host: "127.0.0.1", port: 0))],
        extraBackends: [Channel] = [],
        routes: (_ wsEcho: Int, _ tcpEcho: Int) throws -> [RouteConfiguration]
    ) async throws -> GatewayFixture {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let ws = try await WebSocketEchoServer.start(host: "127.0.0.1", port: 0, group: group)
        let tcp = try await TCPServices.startEcho(host: "127.0.0.1", port: 0, group: group)
        let wsPort = ws.localAddress!.port!
        let tcpPort = tcp.localAddress!.port!
        let configuration = GatewayConfiguration(
            listeners: listeners,
            routes: try routes(wsPort, tcpPort),
            server: server
        )
        let gateway = GatewayServer(configuration: configuration, logger: Self.logger, group: group)
        let addresses = try await gateway.start()
        return GatewayFixture(group: group, gateway: gateway, addresses: addresses, port: addresses[0].port!, wsEchoPort: wsPort, tcpEchoPort: tcpPort, backends: [ws, tcp] + extraBackends)
    }

    private init(group: MultiThreadedEventLoopGroup, gateway: GatewayServer, addresses: [SocketAddress], port: Int, wsEchoPort: Int, tcpEchoPort: Int, backends: [Channel]) {
        self.group = group
        self.gateway = gateway
        self.addresses = addresses
        self.port = port
        self.wsEchoPort = wsEchoPort
        self.tcpEchoPort = tcpEchoPort
        self.backends = backends
    }

    func client(_ path: String, headers: [String] = [], receiveBuffer: Int? = nil) async throws -> (TestClient, [String: String]) {
        try await TestClient.webSocket(port: self.port, path: path, group: self.group, headers: headers, receiveBuffer: receiveBuffer)
    }

    func raw() async throws -> TestClient {
        try await TestClient.connect(port: self.port, group: self.group)
    }

    func stop() async {
        await self.gateway.shutdown()
        for channel in self.backends { try? await channel.close() }
        try? await self.group.shutdownGracefully()
    }

    /// The standard table: /ws to the WebSocket echo, /tcp to the TCP echo.
    static func standard(server: ServerSettings = GatewayFixture.patientServer) async throws -> GatewayFixture {
        try await self.start(server: server) { ws, tcp in
            [
                RouteConfiguration(path: "/ws", backend: .webSocket(host: "127.0.0.1", port: ws, path: nil, query: nil)),
                RouteConfiguration(path: "/tcp", backend: .tcp(host: "127.0.0.1", port: tcp)),
            ]
        }
    }

    /// One route, / to the WebSocket echo, and `timeout` for a complete request (also how long an
    /// HTTP/2 connection may idle): the tests of what the gateway drops.
    static func withHandshakeTimeout(_ timeout: TimeAmount) async throws -> GatewayFixture {
        var server = ServerSettings()
        server.handshakeTimeout = timeout
        return try await self.start(server: server) { ws, _ in
            [RouteConfiguration(path: "/", backend: .webSocket(host: "127.0.0.1", port: ws, path: nil, query: nil))]
        }
    }
}

/// Deterministic payloads: every byte checked, nothing compressible by accident. Eight bytes per
/// step of xorshift64, stored a word at a time: tests run unoptimised on the few threads all async
/// tests share, and a byte-by-byte `map` over 16 MiB held one of them for seconds.
func pattern(_ count: Int, seed: Int = 1) -> [UInt8] {
    var state = UInt64(truncatingIfNeeded: seed &* 2_654_435_761) | 1
    return [UInt8](unsafeUninitializedCapacity: count) { bytes, initialized in
        guard let base = UnsafeMutableRawPointer(bytes.baseAddress) else { return }
        var offset = 0
        while offset < count {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            let word = state.littleEndian
            withUnsafeBytes(of: word) { wordBytes in
                let take = min(8, count - offset)
                if let source = wordBytes.baseAddress { (base + offset).copyMemory(from: source, byteCount: take) }
            }
            offset += 8
        }
        initialized = count
    }
}
