import NIOCore
import NIOHTTP1

/// One HTTP/2 stream: a WebSocket leg's transport (``LegTransport``), the front of the shared session
/// and static-file paths (``SessionFront``, ``StaticFileFront``), or a plain response body.
///
/// Outgoing bytes queue here until nghttp2 asks for them; the queue is what "writable" measures, so
/// a slow client stream stops its backend from being read without touching other streams. Incoming
/// DATA is acknowledged to the client (WINDOW_UPDATE) only once the partner leg could take it and
/// the session's rate limit allowed it.
/// What an event means at a given moment is decided by ``HTTP2StreamState``; this class does it.
final class HTTP2Stream: LegTransport, SessionFront, StaticFileFront {
    /// Queue size above which the stream stops taking writes, and below which it takes them again.
    static let highWaterMark = 64 * 1024
    static let lowWaterMark = 32 * 1024

    let id: Int32
    /// Weak: a stream can outlive its connection's handler (a file chunk read by the thread pool,
    /// a future's callback); it then finds no connection and does nothing.
    private weak var connection: HTTP2ConnectionHandler?
    let eventLoop: EventLoop
    private var state = HTTP2StreamState()
    /// The relay's client leg, from ``accept(_:fields:)`` until the stream closes.
    private(set) var leg: WebSocketLeg?
    /// The place in the connection limits a WebSocket session on this stream took; given back when
    /// the stream is gone (a backend connect under way keeps it until it completes).
    private var slot: ClientSlot?
    /// Got DATA in the current read batch: its leg is told when the batch ends.
    var inReadBatch = false
    private var pending = CircularBuffer<ByteBuffer>()
    private(set) var pendingBytes = 0
    /// DATA bytes received and not yet reported as consumed.
    private var unconsumed = 0
    /// DATA that arrived before the leg existed (bounded by the stream window).
    private var early: [ByteBuffer] = []
    /// The client sent END_STREAM while the backend was being opened: told to the leg after the replay.
    private var endsAfterReplay = false
    /// The queue went past the high-water mark, so the partner stopped reading; set until it drains.
    private var aboveHighWater = false
    /// A static file's sender waiting for room in the queue; failed if the stream closes first.
    private var roomWaiter: EventLoopPromise<Void>?

    var isClosed: Bool { self.state.isClosed }

    init(id: Int32, connection: HTTP2ConnectionHandler) {
        self.id = id
        self.connection = connection
        self.eventLoop = connection.eventLoop
    }

    // MARK: Incoming

    /// DATA from the client. True when it went to the relay (whose leg is told at the batch's end).
    func received(_ data: ByteBuffer) -> Bool {
        switch self.state.dataReceived() {
        case .discard:
            // The connection window was already reopened on arrival; only the stream's is left.
            self.connection?.consume(stream: self.id, bytes: data.readableBytes)
            return false
        case .keep:
            self.unconsumed += data.readableBytes
            self.early.append(data)
            return false
        case .deliver:
            guard let leg = self.leg else {
                // Relaying, but the relay failed to install: the stream is being reset.
                self.connection?.consume(stream: self.id, bytes: data.readableBytes)
                return false
            }
            self.unconsumed += data.readableBytes
            leg.receive(data)
            if leg.mayRead { self.consumeNow() }
            return true
        }
    }

    /// END_STREAM from the client: for a WebSocket stream that is the peer going away.
    func clientEnded() {
        switch self.state.clientEnded() {
        case .none: break
        case .endRelay: self.flush()  // END_STREAM goes once the queue is empty
        }
    }

    private func consumeNow() {
        guard self.unconsumed > 0, let connection = self.connection else { return }
        connection.consume(stream: self.id, bytes: self.unconsumed)
        self.unconsumed = 0
    }

    // MARK: Outgoing (nghttp2's data source)

    /// The next DATA frame's length (at most `limit`): nothing is taken from the queue yet.
    func dataAvailable(upTo limit: Int) -> NGHTTP2ServerSession.DataRead {
        let count = min(limit, self.pendingBytes)
        if count == self.pendingBytes && self.state.endsWhenQueueEmpty {
            if self.state.state == .responseEnding { self.connection?.responseEnded(self.id) }  // told after the send pass
            return .bytes(count, endStream: true)
        }
        return count == 0 ? .deferred : .bytes(count, endStream: false)
    }

    /// The DATA frame is being written: `count` bytes leave the queue, as the buffers they are in.
    func takeData(_ count: Int, into output: inout HTTP2Output) -> Bool {
        guard count <= self.pendingBytes else { return false }
        var left = count
        while left > 0, var head = self.pending.first {
            if head.readableBytes <= left {
                left -= head.readableBytes
                output.append(payload: head)
                self.pending.removeFirst()
            } else {
                guard let part = head.readSlice(length: left) else { return false }
                output.append(payload: part)
                self.pending[self.pending.startIndex] = head
                left = 0
            }
        }
        self.pendingBytes -= count
        if self.aboveHighWater && self.pendingBytes <= Self.lowWaterMark {
            self.aboveHighWater = false
            self.connection?.streamBecameWritable(self)  // told after nghttp2's send pass, not from inside it
        }
        return true
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
        guard case .release(let endsRelay) = self.state.closed() else { return }
        self.slot?.release()
        self.slot = nil
        if let waiter = self.roomWaiter {
            self.roomWaiter = nil
            waiter.fail(ChannelError.ioOnClosedChannel)
        }
        self.early.removeAll()
        self.pending.removeAll()
        self.pendingBytes = 0
        if let leg = self.leg {
            self.leg = nil
            if endsRelay { leg.transportClosed() }
            leg.transport = nil
        }
    }

    /// A fixed body (plain responses): the stream ends once it has gone.
    func enqueueBody(_ body: ByteBuffer) {
        guard self.state.acceptsWrites else { return }
        self.pending.append(body)
        self.pendingBytes += body.readableBytes
        _ = self.state.endAfterQueue()
    }

    // MARK: WebSocket over the stream

    /// A valid WebSocket request on this stream: DATA is kept from now on, for the relay to replay.
    /// False when the stream has closed.
    func upgradeRequested() -> Bool {
        self.state.upgradeRequested()
    }

    // MARK: SessionFront (the shared session path)

    var protocolName: String { "h2" }
    var clientDescription: String { self.connection?.clientDescription ?? "?" }
    var clientIsWaiting: Bool { !self.isClosed && self.connection != nil }

    /// A slot of the stream's own, given back when the stream closes.
    func sessionSlot() -> Result<ClientSlot?, HTTPRefusal> {
        guard let connection else { return .failure(HTTPRefusal(.internalServerError, "connection gone", closesConnection: true, label: "internal")) }
        let slot = connection.takeSessionSlot()
        if case .success(let taken) = slot { self.slot = taken }
        return slot
    }

    func backendConnectStarted() { self.connection?.connectStarted() }
    func backendConnectEnded() { self.connection?.connectEnded() }

    /// The request is answered with an error: the DATA kept for the relay goes.
    func handshakeFailed() -> Bool {
        guard self.state.connectFailed(), self.connection != nil else { return false }
        self.early.removeAll()
        self.consumeNow()
        return true
    }

    func answer(_ refusal: HTTPRefusal) {
        self.connection?.answer(self, refusal)
    }

    /// What the state says; an END_STREAM the client sent meanwhile is acted on after the replay.
    func backendOpened() -> Bool {
        guard self.connection != nil, case .start(let clientEnded) = self.state.backendConnected() else { return false }
        self.endsAfterReplay = clientEnded
        return true
    }

    /// The leg is this stream's before the 200 goes: sending it can close the stream (nghttp2
    /// reports a stream the client reset, or the write fails and the connection closes), and the
    /// leg must hear of that, or its session and backend connection would live on without a client.
    func accept(_ relay: RelayInstaller, fields: WebSocketResponseFields) throws {
        guard let connection else { throw ChannelError.ioOnClosedChannel }
        relay.clientLeg.transport = self
        self.leg = relay.clientLeg
        do {
            try connection.acceptWebSocket(self, fields: fields)
        } catch {
            // Not answered: the installer abandons the leg itself.
            self.leg = nil
            relay.clientLeg.transport = nil
            throw error
        }
    }

    func abort() {
        self.connection?.resetStream(self.id, errorCode: NGHTTP2ServerSession.ErrorCode.internalError)
        self.connection?.flushOutput()
    }

    // MARK: StaticFileFront (the shared static-file path)

    func respond(_ status: HTTPResponseStatus, headers: [(String, String)], contentType: String, body: String, isHead: Bool) {
        self.connection?.respond(self, status: Int(status.code), headers: headers, contentType: contentType, body: body, isHead: isHead)
    }

    func sendHead(_ status: HTTPResponseStatus, headers: [(String, String)], bodyFollows: Bool) {
        self.connection?.submit(self, status: Int(status.code), headers: headers, hasBody: bodyFollows)
    }

    func writeBodyChunk(_ chunk: ByteBuffer) -> EventLoopFuture<Void>? {
        self.writeBody(chunk)
    }

    func abandonBody() {
        if !self.isClosed { self.close() }
    }

    // MARK: LegTransport

    var isWritable: Bool {
        (self.connection?.isChannelWritable ?? false) && self.pendingBytes < Self.highWaterMark
    }

    func write(_ buffer: ByteBuffer) {
        guard self.state.acceptsWrites, buffer.readableBytes > 0 else { return }
        self.pending.append(buffer)
        self.pendingBytes += buffer.readableBytes
        if self.pendingBytes >= Self.highWaterMark { self.aboveHighWater = true }
    }

    /// Ends a response body once what is queued has gone.
    func endBody() {
        self.flushAndEnd()
    }

    private func flushAndEnd() {
        _ = self.state.endAfterQueue()
        self.flush()
    }

    func flush() {
        guard let connection = self.connection, !self.isClosed else { return }
        connection.resumeData(stream: self.id)
        connection.flushOutput()
    }

    func startReading() {
        let early = self.early
        self.early.removeAll()
        for data in early {
            self.leg?.receive(data)
        }
        if !early.isEmpty { self.leg?.readComplete() }
        if self.leg?.mayRead ?? true { self.consumeNow() }
        if self.endsAfterReplay {
            self.endsAfterReplay = false
            self.clientEnded()
        }
        self.connection?.flushOutput()
    }

    func resumeReading() {
        self.consumeNow()
        self.connection?.flushOutput()
    }

    func closeAfterFlush() {
        self.flushAndEnd()
    }

    func close() {
        guard let connection = self.connection, !self.isClosed else { return }
        connection.resetStream(self.id, errorCode: NGHTTP2ServerSession.ErrorCode.cancel)
        connection.flushOutput()
    }
}
