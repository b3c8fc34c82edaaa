import Foundation
import NIOCore
import NIOPosix

/// Byte-stream services for the demo and the tests.
public enum TCPServices {
    /// Echoes every byte back.
    public static func startEcho(host: String, port: Int, group: EventLoopGroup) async throws -> Channel {
        try await self.start(host: host, port: port, group: group) { EchoBytesHandler() }
    }

    /// A small line-oriented service for the browser demo: greets, then answers each line
    /// (`time`, `uptime`, `help`, anything else is echoed).
    public static func startLineService(host: String, port: Int, group: EventLoopGroup) async throws -> Channel {
        try await self.start(host: host, port: port, group: group) { LineServiceHandler() }
    }

    static func start(host: String, port: Int, group: EventLoopGroup, handler: @escaping @Sendable () -> ChannelHandler & Sendable) async throws -> Channel {
        try await ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(handler())
                }
            }
            .bind(host: host, port: port)
            .get()
    }
}

final class EchoBytesHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.write(data, promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            context.writeAndFlush(NIOAny(context.channel.allocator.buffer(capacity: 0))).whenComplete { _ in context.close(promise: nil) }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}

final class LineServiceHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var pending = ""
    private let started = Date()

    func channelActive(context: ChannelHandlerContext) {
        self.send("wsgate demo service: type 'help'", context: context)
        context.flush()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = Self.unwrapInboundIn(data)
        self.pending += String(decoding: buffer.readableBytesView, as: UTF8.self)
        if self.pending.utf8.count > 4096 { self.pending = String(self.pending.suffix(4096)) }
        while let newline = self.pending.firstIndex(of: "\n") {
            let line = self.pending[..<newline].trimmingCharacters(in: .whitespacesAndNewlines)
            self.pending = String(self.pending[self.pending.index(after: newline)...])
            self.answer(line, context: context)
        }
    }

    private func answer(_ line: String, context: ChannelHandlerContext) {
        switch line.lowercased() {
        case "help": self.send("commands: time, uptime, help; anything else is echoed", context: context)
        case "time": self.send(ISO8601DateFormatter().string(from: Date()), context: context)
        case "uptime": self.send(String(format: "up %.1f s", Date().timeIntervalSince(self.started)), context: context)
        case "": break
        default: self.send("echo: \(line)", context: context)
        }
    }

    private func send(_ line: String, context: ChannelHandlerContext) {
        context.write(Self.wrapOutboundOut(context.channel.allocator.buffer(string: line + "\n")), promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event { context.close(promise: nil) }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
