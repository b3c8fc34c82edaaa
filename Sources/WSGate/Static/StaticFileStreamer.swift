import Metrics
import NIOCore
import NIOHTTP1
import NIOPosix

/// Sends a file in 64 KiB chunks, each read only once the previous one was written: memory per
/// response stays one chunk whatever the file's size or the client's speed. A client that takes
/// no bytes for `stallTimeout` is given up on.
enum StaticFileStreamer {
    static let chunkSize = 64 * 1024
    static let stallTimeout = TimeAmount.seconds(60)
    static let fileIO = NonBlockingFileIO(threadPool: .singleton)

    /// Closes `handle` when done, however it ends.
    static func send(_ handle: NIOFileHandle, byteCount: Int, context: ChannelHandlerContext, wrap: @escaping (ByteBuffer) -> NIOAny) -> EventLoopFuture<Void> {
        let eventLoop = context.eventLoop
        let sent = self.fileIO.readChunked(fileHandle: handle, byteCount: byteCount, chunkSize: self.chunkSize, allocator: context.channel.allocator, eventLoop: eventLoop) { chunk in
            let written = context.writeAndFlush(wrap(chunk))
            let stall = eventLoop.scheduleTask(in: self.stallTimeout) { context.close(promise: nil) }
            written.whenComplete { _ in stall.cancel() }
            return written
        }
        sent.whenComplete { _ in try? handle.close() }
        return sent
    }
}

/// `wsgate_static_responses_total{route, status}`.
enum StaticFileMetrics {
    static func answered(route: String, status: HTTPResponseStatus) {
        Counter(label: "wsgate_static_responses_total", dimensions: [("route", route), ("status", String(status.code))]).increment()
    }
}
