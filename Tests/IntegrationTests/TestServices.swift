#if canImport(Glibc)
import Glibc
#endif
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
@testable import WSGate

/// A loopback port that refuses connections for as long as this object lives: a socket bound to it
/// that never listens. A port only bound and closed again can be taken by another test's listener
/// before the gateway connects (seen under a CPU hog: a route to the "dead" port answered 101).
final class RefusingPort: Sendable {
    struct Failure: Error {
        var call: String
        var errno: Int32
    }

    let port: Int
    private let descriptor: Int32

    init() throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw Failure(call: "socket", errno: errno) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0 }
        }
        guard bound else {
            let failure = Failure(call: "bind", errno: errno)
            Glibc.close(descriptor)
            throw failure
        }
        self.descriptor = descriptor
        self.port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit {
        Glibc.close(self.descriptor)
    }
}

/// Small purpose-built TCP services for the tests.
enum TestServices {
    /// A valid 101 to the WebSocket request head gathered in `request` (with `extraHeaders`, each
    /// line ending in CRLF), or nil while the head is incomplete or has no key.
    static func webSocketAnswer(to request: String, extraHeaders: String = "") -> String? {
        guard request.contains("\r\n\r\n"),
              let keyLine = request.split(separator: "\r\n").first(where: { $0.lowercased().hasPrefix("sec-websocket-key:") }) else { return nil }
        let key = keyLine.split(separator: ":", maxSplits: 1)[1].trimmingCharacters(in: .whitespaces)
        return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Accept: \(WebSocketAccept.value(forKey: key))\r\n\(extraHeaders)\r\n"
    }

    /// Accepts, runs `onActive`, and otherwise does nothing (reads are discarded).
    static func start(group: EventLoopGroup, unixPath: String? = nil, _ handler: @escaping @Sendable () -> ChannelHandler & Sendable) async throws -> Channel {
        let bootstrap = ServerBootstrap(group: group)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(handler()) }
            }
        if let unixPath {
            return try await bootstrap.bind(unixDomainSocketPath: unixPath, cleanupExistingSocketFile: true).get()
        }
        return try await bootstrap.bind(host: "127.0.0.1", port: 0).get()
    }
}

/// Says something, then closes (or resets). A resetting service waits for the first bytes from the
/// gateway, so the reset cannot race the gateway's own connect.
final class SayAndCloseHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    let text: String
    let reset: Bool

    init(_ text: String, reset: Bool = false) {
        self.text = text
        self.reset = reset
    }

    func channelActive(context: ChannelHandlerContext) {
        if !self.reset { self.sayAndClose(context: context) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if self.reset { self.sayAndClose(context: context) }
    }

    private func sayAndClose(context: ChannelHandlerContext) {
        context.writeAndFlush(NIOAny(context.channel.allocator.buffer(string: self.text))).assumeIsolated().whenComplete { _ in
            guard self.reset, let provider = context.channel as? SocketOptionProvider else {
                context.close(promise: nil)
                return
            }
            // SO_LINGER 0: close sends RST instead of FIN.
            provider.setSoLinger(linger(l_onoff: 1, l_linger: 0)).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }
}

/// Accepts and never answers: a backend that hangs during the WebSocket handshake.
final class SilentHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
}

/// Records everything received and when the client's side was closed.
final class RecordingHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    let received = NIOLockedValueBox<(bytes: [UInt8], eof: Bool)>(([], false))

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = Self.unwrapInboundIn(data)
        self.received.withLockedValue { $0.bytes += buffer.readableBytesView }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            self.received.withLockedValue { $0.eof = true }
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.received.withLockedValue { $0.eof = true }
    }
}

func eventually(_ what: String, timeout: TimeAmount = .seconds(10), _ condition: () -> Bool) async throws {
    let deadline = NIODeadline.now() + timeout
    while !condition() {
        if NIODeadline.now() > deadline { throw TestTimeout(what: what) }
        try await Task.sleep(nanoseconds: 5_000_000)
    }
}

/// Says something, shuts its output (a TCP half-close) and waits: `sawEOF` once the other side closes too.
final class HalfClosingService: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    let text: String
    let sawEOF = NIOLockedValueBox(false)

    init(_ text: String) { self.text = text }

    func channelActive(context: ChannelHandlerContext) {
        context.write(NIOAny(context.channel.allocator.buffer(string: self.text)), promise: nil)
        context.flush()
        context.close(mode: .output, promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            self.sawEOF.withLockedValue { $0 = true }
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.sawEOF.withLockedValue { $0 = true }
    }
}

/// A service that ends the conversation itself once the client has said something: the ways real
/// services (mosquitto after DISCONNECT, a failed VNC password, a one-shot line service) do it.
final class ClosingService: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer

    enum Behaviour: String, CaseIterable, Sendable {
        /// Replies, then closes the connection.
        case repliesAndCloses
        /// Closes without a word.
        case closesAfterReading
        /// Sends the start of a length-prefixed record (10 of 100 bytes) and closes.
        case closesMidRecord
        /// Replies and shuts its output only (a TCP half-close), closing when the gateway does.
        case halfCloses
    }

    /// Connections accepted and connections gone, across all of a listener's children.
    final class Counts: Sendable {
        let state = NIOLockedValueBox((opened: 0, closed: 0))
    }

    let behaviour: Behaviour
    let counts: Counts
    private var answered = false

    init(_ behaviour: Behaviour, counts: Counts) {
        self.behaviour = behaviour
        self.counts = counts
    }

    func channelActive(context: ChannelHandlerContext) {
        self.counts.state.withLockedValue { $0.opened += 1 }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.counts.state.withLockedValue { $0.closed += 1 }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !self.answered else { return }
        self.answered = true
        let allocator = context.channel.allocator
        switch self.behaviour {
        case .repliesAndCloses:
            context.writeAndFlush(NIOAny(allocator.buffer(string: "bye")), promise: nil)
            context.close(promise: nil)
        case .closesAfterReading:
            context.close(promise: nil)
        case .closesMidRecord:
            context.writeAndFlush(NIOAny(allocator.buffer(bytes: [0, 100] + Array(repeating: 0x61, count: 10))), promise: nil)
            context.close(promise: nil)
        case .halfCloses:
            context.writeAndFlush(NIOAny(allocator.buffer(string: "bye")), promise: nil)
            context.close(mode: .output, promise: nil)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event { context.close(promise: nil) }
    }
}
