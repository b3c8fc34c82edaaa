import NIOCore

/// One HTTP/2 stream as a WebSocket leg sees it (a ``LegTransport``), or as a plain response body.
///
/// Outgoing bytes queue here until nghttp2 asks for them; the queue is what "writable" measures, so
/// a slow client stream stops its backend from being read without touching other streams. Incoming
/// DATA is acknowledged to the client (WINDOW_UPDATE) only once the partner leg could take it.
final class HTTP2Stream: LegTransport {
    /// Queue size above which the stream stops taking writes, and below which it takes them again.
    static let highWaterMark = 64 * 1024
    static let lowWaterMark = 32 * 1024

    let id: Int32
    /// Weak: a stream can outlive its connection's handler (a file chunk read by the thread pool,
    /// a future's callback); it then finds no connection and does nothing.
    private weak var connection: HTTP2ConnectionHandler?
    let eventLoop: EventLoop
    var leg: WebSocketLeg?
    /// The backend is being opened: DATA is held (in ``early``), not discarded.
    var isConnecting = false
    /// Gives back the connection slot a WebSocket session on this stream took (see
    /// ``HTTP2ConnectionHandler``): called once, when the stream is gone.
    var releasesSlot: (() -> Void)?
    /// Got DATA in the current read batch: its leg is told when the batch ends.
    var inReadBatch = false
    private var pending = CircularBuffer<ByteBuffer>()
    private(set) var pendingBytes = 0
    private var endAfterPending = false
    /// DATA bytes received and not yet reported as consumed.
    private var unconsumed = 0
    /// DATA that arrived before the leg existed (bounded by the stream window).
    private var early: [ByteBuffer] = []
    /// The queue went past the high-water mark, so the partner stopped reading; set until it drains.
    private var aboveHighWater = false
    /// A static file's sender waiting for room in the queue; failed if the stream closes first.
    private var roomWaiter: EventLoopPromise<Void>?
    private(set) var isClosed = false

    init(id: Int32, connection: HTTP2ConnectionHandler) {
        self.id = id
        self.connection = connection
        self.eventLoop = connection.eventLoop
    }

    // MARK: Incoming

    func received(_ data: ByteBuffer) {
        self.unconsumed += data.readableBytes
        guard let leg = self.leg else {
            self.early.append(data)
            return
        }
        leg.receive(data)
        if leg.partner?.isWritable ?? true { self.consumeNow() }
    }

    private func consumeNow() {
        guard self.unconsumed > 0, let connection = self.connection else { return }
        connection.session.consume(stream: self.id, bytes: self.unconsumed)
        self.unconsumed = 0
    }

    /// A stream with no leg (a plain request, a refused one) takes whatever comes.
    func discard(_ data: ByteBuffer) {
        // The connection window was already reopened on arrival; only the stream's is left.
        self.connection?.session.consume(stream: self.id, bytes: data.readableBytes)
    }

    // MARK: Outgoing (nghttp2's data source)

    func readData(into buffer: UnsafeMutableRawBufferPointer) -> NGHTTP2ServerSession.DataRead {
        var written = 0
        while written < buffer.count, var head = self.pending.first {
            let count = min(buffer.count - written, head.readableBytes)
            head.withUnsafeReadableBytes { bytes in
                UnsafeMutableRawBufferPointer(rebasing: buffer[written..<(written + count)]).copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[0..<count]))
            }
            head.moveReaderIndex(forwardBy: count)
            written += count
            if head.readableBytes == 0 {
                self.pending.removeFirst()
            } else {
                self.pending[self.pending.startIndex] = head
            }
        }
        self.pendingBytes -= written
        if self.aboveHighWater && self.pendingBytes <= Self.lowWaterMark {
            self.aboveHighWater = false
            self.connection?.streamBecameWritable(self)  // told after nghttp2's send pass, not from inside it
        }
        if self.pending.isEmpty && self.endAfterPending {
            if self.leg == nil { self.connection?.responseEnded(self.id) }  // told after the send pass too
            return .bytes(written, endStream: true)
        }
        return written == 0 ? .deferred : .bytes(written, endStream: false)
    }

    /// Called by the connection once nghttp2 is done: tell the partner it may read again.
    func notifyWritable() {
        self.leg?.partner?.resumeReading()
        self.leg?.transportBecameWritable()
        if let waiter = self.roomWaiter, self.isWritable {
            self.roomWaiter = nil
            waiter.succeed(())
        }
    }

    /// Queues a chunk of a response body; succeeds once the queue has room for the next one,
    /// fails once the stream is gone.
    func writeBody(_ chunk: ByteBuffer) -> EventLoopFuture<Void> {
        guard !self.isClosed else { return self.eventLoop.makeFailedFuture(ChannelError.ioOnClosedChannel) }
        self.write(chunk)
        self.flush()
        // The flush may have closed the connection, and this stream with it: nothing would ever
        // complete a waiter set now.
        guard !self.isClosed else { return self.eventLoop.makeFailedFuture(ChannelError.ioOnClosedChannel) }
        if self.isWritable { return self.eventLoop.makeSucceededVoidFuture() }
        let waiter = self.eventLoop.makePromise(of: Void.self)
        self.roomWaiter = waiter
        return waiter.futureResult
    }

    /// The stream is gone (ended, reset by the client, or its connection closed): a file sender
    /// waiting for room fails, a WebSocket leg ends its session and lets go of this transport.
    func streamClosed() {
        self.isClosed = true
        if let release = self.releasesSlot {
            self.releasesSlot = nil
            release()
        }
        if let waiter = self.roomWaiter {
            self.roomWaiter = nil
            waiter.fail(ChannelError.ioOnClosedChannel)
        }
        self.leg?.transportClosed()
        self.leg?.transport = nil
        self.leg = nil
    }

    /// A fixed body (plain responses).
    func enqueueBody(_ body: ByteBuffer) {
        self.pending.append(body)
        self.pendingBytes += body.readableBytes
        self.endAfterPending = true
    }

    // MARK: LegTransport

    var isWritable: Bool {
        (self.connection?.isChannelWritable ?? false) && self.pendingBytes < Self.highWaterMark
    }

    func write(_ buffer: ByteBuffer) {
        guard !self.endAfterPending, buffer.readableBytes > 0 else { return }
        self.pending.append(buffer)
        self.pendingBytes += buffer.readableBytes
        if self.pendingBytes >= Self.highWaterMark { self.aboveHighWater = true }
    }

    /// Ends a response body once what is queued has gone.
    func endBody() {
        self.endAfterPending = true
        self.flush()
    }

    func flush() {
        guard let connection = self.connection, !self.isClosed else { return }
        connection.session.resumeData(stream: self.id)
        connection.flushOutput()
    }

    func startReading() {
        let early = self.early
        self.early.removeAll()
        for data in early {
            self.leg?.receive(data)
        }
        if !early.isEmpty { self.leg?.readComplete() }
        if self.leg?.partner?.isWritable ?? true { self.consumeNow() }
        self.connection?.flushOutput()
    }

    func resumeReading() {
        self.consumeNow()
        self.connection?.flushOutput()
    }

    func closeAfterFlush() {
        self.endAfterPending = true
        self.flush()
    }

    func close() {
        guard let connection = self.connection, !self.isClosed else { return }
        connection.session.submitReset(stream: self.id, errorCode: NGHTTP2ServerSession.ErrorCode.cancel)
        connection.flushOutput()
    }
}
