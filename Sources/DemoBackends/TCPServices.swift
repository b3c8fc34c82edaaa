import Foundation
import NIOCore
import NIOPosix

/// Byte-stream services for the demo and the tests.
public enum TCPServices {
    /// Echoes every byte back.
    public static func startEcho(host: String, port: Int, group: EventLoopGroup) async throws -> Channel {
        try await self.start(host: host, port: port, group: group) { EchoBytesHandler() }
    }

    /// Echoes every byte back, on a unix socket (a socket file already there is replaced).
    public static func startEcho(unixPath: String, group: EventLoopGroup) async throws -> Channel {
        try await ServerBootstrap(group: group)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(EchoBytesHandler()) }
            }
            .bind(unixDomainSocketPath: unixPath, cleanupExistingSocketFile: true)
            .get()
    }

    static func start(host: String, port: Int, group: EventLoopGroup, handler: @escaping @Sendable () -> ChannelHandler & Sendable) async throws -> Channel {
        try await ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            // Deeper than NIO's 128: a full accept queue drops SYNs, and a dropped SYN is retried only
            // a second later, so bursts of connects on a busy machine would time out at the gateway.
            .serverChannelOption(.backlog, value: 1024)
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
            context.writeAndFlush(NIOAny(context.channel.allocator.buffer(capacity: 0))).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
