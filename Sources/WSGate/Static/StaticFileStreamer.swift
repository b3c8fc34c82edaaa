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

    /// `write` hands a chunk to the transport and succeeds once it may take the next (HTTP/1.1:
    /// the write completed; HTTP/2: the stream's queue has room); `abandon` ends the response when
    /// a chunk waits longer than `stallTimeout`. Closes `handle` when done, however it ends.
    static func send(_ handle: NIOFileHandle, byteCount: Int, allocator: ByteBufferAllocator, eventLoop: EventLoop,
                     write: @escaping (ByteBuffer) -> EventLoopFuture<Void>, abandon: @escaping () -> Void) -> EventLoopFuture<Void> {
        // NIO calls the chunk handler on `eventLoop`, where the transport's closures belong.
        let transport = NIOLoopBound((write: write, abandon: abandon), eventLoop: eventLoop)
        let sent = self.fileIO.readChunked(fileHandle: handle, byteCount: byteCount, chunkSize: self.chunkSize, allocator: allocator, eventLoop: eventLoop) { chunk in
            // The stall timer ends the wait itself: however the transport behaves, the file is closed.
            let next = eventLoop.makePromise(of: Void.self)
            let stall = eventLoop.scheduleTask(in: self.stallTimeout) {
                transport.value.abandon()
                next.fail(Stalled())
            }
            transport.value.write(chunk).whenComplete { result in
                stall.cancel()
                next.completeWith(result)  // ignored if the stall timer already failed it
            }
            return next.futureResult
        }
        sent.whenComplete { _ in try? handle.close() }
        return sent
    }
}

/// A client took no bytes for ``StaticFileStreamer/stallTimeout``.
struct Stalled: Error, CustomStringConvertible {
    var description: String { "the client took no bytes for \(StaticFileStreamer.stallTimeout.prettyDescription)" }
}

/// `wsgate_static_responses_total{route, status}`.
enum StaticFileMetrics {
    static func answered(route: String, status: HTTPResponseStatus) {
        Counter(label: "wsgate_static_responses_total", dimensions: [("route", route), ("status", String(status.code))]).increment()
    }
}
