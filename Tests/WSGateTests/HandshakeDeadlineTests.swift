import Logging
import NIOCore
import NIOEmbedded
import Testing
@testable import WSGate

/// The handshake timeout runs from the connection's accept, not afresh at each step (PROXY header,
/// TLS, protocol detection, the request head): on an embedded channel, whose clock only moves when
/// told, so the test holds under any load.
@Suite struct HandshakeDeadlineTests {
    static let timeout = TimeAmount.seconds(10)

    func connection() throws -> (EmbeddedChannel, GatewayContext, ClientConnection) {
        let channel = EmbeddedChannel()
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        var configuration = GatewayConfiguration(listeners: [], routes: [])
        configuration.server.handshakeTimeout = Self.timeout
        let gateway = GatewayContext(configuration: configuration, logger: Logger(label: "test"))
        // Accepted at the embedded clock's zero.
        let client = ClientConnection(address: nil, localAddress: nil, secure: false, handshakeDeadline: channel.embeddedEventLoop.now + Self.timeout)
        return (channel, gateway, client)
    }

    /// A client that keeps detection waiting (a prefix of the HTTP/2 preface), then starts an
    /// HTTP/1.1 head it never finishes, is dropped one timeout after it connected. It used to get a
    /// second whole timeout once detection ended.
    @Test func detectionAndTheRequestHeadShareOneTimeout() throws {
        let (channel, gateway, client) = try self.connection()
        try channel.pipeline.syncOperations.addHandler(ProtocolDetector(gateway: gateway, client: client))
        try channel.writeInbound(ByteBuffer(string: "P"))  // could still be "PRI * HTTP/2.0"
        channel.embeddedEventLoop.advanceTime(by: .seconds(9))
        #expect(channel.isActive)
        try channel.writeInbound(ByteBuffer(string: "OST / HTTP/1.1\r\nHost: x\r\n"))  // HTTP/1.1 after all
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(!channel.isActive, "dropped at the connection's deadline")
    }

    /// After a kept-alive response, the next request gets the whole timeout from then.
    @Test func aKeptAliveConnectionsNextRequestGetsAWholeTimeout() throws {
        let (channel, gateway, client) = try self.connection()
        try HTTP1Pipeline.configure(channel, gateway: gateway, client: client)
        channel.embeddedEventLoop.advanceTime(by: .seconds(9))
        try channel.writeInbound(ByteBuffer(string: "GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n"))  // 404, kept alive
        #expect(try channel.readOutbound(as: ByteBuffer.self).map { String(buffer: $0).hasPrefix("HTTP/1.1 404") } == true)
        channel.embeddedEventLoop.advanceTime(by: .seconds(9))
        #expect(channel.isActive, "9 s into the second request's 10")
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(!channel.isActive)
    }
}
