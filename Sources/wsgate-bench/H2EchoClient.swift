import CNghttp2
import NIOCore
import WSGate

/// One HTTP/2 connection of the load side (cleartext, prior knowledge) whose streams are WebSocket
/// connections opened with RFC 8441's extended CONNECT, each an ``EchoConnection``. libnghttp2 does
/// the HTTP/2; its callbacks only record what happened, handled once nghttp2 has returned.
/// It carries `capacity` streams over its life and closes when the last of them has closed.
/// Used only on its channel's event loop.
final class H2EchoClient: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    fileprivate enum Event {
        case status(stream: Int32, Int)
        case data(stream: Int32, ByteBuffer)
        case closed(stream: Int32, errorCode: UInt32)
        case settings
    }

    private struct Stream {
        var connection: EchoConnection
        var outbound = CircularBuffer<ByteBuffer>()
        /// nghttp2 asked for DATA when there was none: it waits for `nghttp2_session_resume_data`.
        var deferred = false
        /// The client's side ends (END_STREAM) once the queue is sent.
        var ending = false
    }

    private let authority: String
    private let capacity: Int
    private var assigned = 0
    private var session: OpaquePointer?
    private var context: ChannelHandlerContext?
    private var events = CircularBuffer<Event>()
    private var streams: [Int32: Stream] = [:]
    /// Streams asked for before the server's SETTINGS allowed extended CONNECT.
    private var waiting: [EchoConnection] = []
    private var connectProtocolAllowed = false
    private var failed = false
    private var handling = false

    init(authority: String, capacity: Int) {
        self.authority = authority
        self.capacity = capacity
    }

    deinit {
        nghttp2_session_del(self.session)
    }

    /// It has been given all the streams it will carry.
    var isFull: Bool { self.assigned >= self.capacity }

    /// Opens a stream for `connection` (once the server allows extended CONNECT).
    func open(_ connection: EchoConnection) {
        self.assigned += 1
        if self.connectProtocolAllowed {
            self.submit(connection)
            self.send()
        } else {
            self.waiting.append(connection)
        }
    }

    func write(_ frame: ByteBuffer, stream: Int32) {
        guard var entry = self.streams[stream] else { return }
        entry.outbound.append(frame)
        let resume = entry.deferred
        entry.deferred = false
        self.streams[stream] = entry
        if resume { nghttp2_session_resume_data(self.session, stream) }
    }

    func flush() {
        self.send()
    }

    /// Ends the client's side of the stream after what is queued (the closing handshake is done).
    func endStream(_ stream: Int32) {
        guard var entry = self.streams[stream] else { return }
        entry.ending = true
        let resume = entry.deferred
        entry.deferred = false
        self.streams[stream] = entry
        if resume { nghttp2_session_resume_data(self.session, stream) }
        self.send()
    }

    func reset(stream: Int32) {
        nghttp2_submit_rst_stream(self.session, UInt8(NGHTTP2_FLAG_NONE.rawValue), stream, UInt32(NGHTTP2_CANCEL.rawValue))
        self.send()
    }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func channelActive(context: ChannelHandlerContext) {
        var callbacks: OpaquePointer?
        guard nghttp2_session_callbacks_new(&callbacks) == 0 else { return self.fail("nghttp2_session_callbacks_new failed") }
        defer { nghttp2_session_callbacks_del(callbacks) }
        nghttp2_session_callbacks_set_on_header_callback(callbacks, onHeader)
        nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, onFrameReceived)
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, onDataChunk)
        nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, onStreamClose)
        guard nghttp2_session_client_new(&self.session, callbacks, Unmanaged.passUnretained(self).toOpaque()) == 0 else {
            return self.fail("nghttp2_session_client_new failed")
        }
        // Windows big enough that flow control never limits the echo workloads (16 × 4 × 64 KiB in flight).
        var settings = [nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue), value: 1 << 22)]
        nghttp2_submit_settings(self.session, UInt8(NGHTTP2_FLAG_NONE.rawValue), &settings, settings.count)
        nghttp2_session_set_local_window_size(self.session, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0, 1 << 26)
        self.send()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = Self.unwrapInboundIn(data)
        let result = buffer.withUnsafeReadableBytes { bytes in
            wsgate_session_mem_recv(self.session, bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count)
        }
        guard result >= 0 else {
            return self.fail("HTTP/2 protocol error from the server: \(String(cString: nghttp2_strerror(Int32(truncatingIfNeeded: result))))")
        }
        self.handleEvents()
    }

    /// Echo sends made while handling a read go out once per read batch.
    func channelReadComplete(context: ChannelHandlerContext) {
        self.send()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.closeStreams()
    }

    /// Also when the connection never came up (no channelInactive then).
    func handlerRemoved(context: ChannelHandlerContext) {
        self.closeStreams()
    }

    private func closeStreams() {
        let connections = self.streams.values.map(\.connection) + self.waiting
        self.streams.removeAll()
        self.waiting.removeAll()
        for connection in connections { connection.transportClosed() }
        self.context = nil
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        self.fail("\(error)")
    }

    // MARK: Plumbing

    private func submit(_ connection: EchoConnection) {
        let headers = [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "http"), (":path", "/"),
                       (":authority", self.authority), ("sec-websocket-version", "13")]
        let stream = NGHTTP2HeaderVector.with(headers) { vector, count in
            wsgate_submit_request(self.session, vector, count, readCallback)
        }
        guard stream > 0 else {
            self.waiting.append(connection)  // failed and closed with the others
            return self.fail("nghttp2_submit_request failed: \(String(cString: nghttp2_strerror(stream)))")
        }
        self.streams[stream] = Stream(connection: connection)
        connection.attach(to: self, stream: stream)
    }

    /// Handles what nghttp2 recorded (more may be recorded meanwhile: streams our own frames closed).
    private func handleEvents() {
        guard !self.handling else { return }
        self.handling = true
        defer { self.handling = false }
        while let event = self.events.popFirst() {
            switch event {
            case .settings:
                guard !self.connectProtocolAllowed,
                      nghttp2_session_get_remote_settings(self.session, NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL) == 1 else { continue }
                self.connectProtocolAllowed = true
                let waiting = self.waiting
                self.waiting.removeAll()
                for connection in waiting { self.submit(connection) }
            case .status(let stream, let status):
                guard let connection = self.streams[stream]?.connection else { continue }
                if status == 200 {
                    connection.streamOpened()
                } else {
                    connection.fail("extended CONNECT answered \(status)")
                }
            case .data(let stream, let bytes):
                self.streams[stream]?.connection.receive(bytes)
            case .closed(let stream, _):
                guard let entry = self.streams.removeValue(forKey: stream) else { continue }
                entry.connection.transportClosed()
                if self.isFull && self.streams.isEmpty && self.waiting.isEmpty {
                    nghttp2_session_terminate_session(self.session, UInt32(NGHTTP2_NO_ERROR.rawValue))
                    self.send()
                    self.context?.close(promise: nil)
                }
            }
        }
    }

    /// Writes every frame nghttp2 has ready, then flushes.
    private func send() {
        guard let context, let session, !self.failed else { return }
        var output = context.channel.allocator.buffer(capacity: 0)
        while true {
            var data: UnsafePointer<UInt8>?
            let count = wsgate_session_mem_send(session, &data)
            if count < 0 { return self.fail("nghttp2_session_mem_send failed: \(String(cString: nghttp2_strerror(Int32(truncatingIfNeeded: count))))") }
            guard count > 0, let data else { break }
            output.writeBytes(UnsafeRawBufferPointer(start: data, count: count))
        }
        if output.readableBytes > 0 { context.writeAndFlush(Self.wrapOutboundOut(output), promise: nil) }
        self.handleEvents()
    }

    private func fail(_ reason: String) {
        guard !self.failed else { return }
        self.failed = true
        let connections = self.streams.values.map(\.connection) + self.waiting
        for connection in connections { connection.fail(reason) }
        self.context?.close(promise: nil)
    }

    // MARK: Callback targets

    fileprivate static func from(_ userData: UnsafeMutableRawPointer?) -> H2EchoClient? {
        userData.map { Unmanaged<H2EchoClient>.fromOpaque($0).takeUnretainedValue() }
    }

    fileprivate func record(_ event: Event) {
        self.events.append(event)
    }

    /// Copies up to `length` queued bytes of the stream into nghttp2's frame buffer.
    fileprivate func read(stream: Int32, into target: UnsafeMutableRawBufferPointer, flags: UnsafeMutablePointer<UInt32>) -> Int {
        guard var entry = self.streams[stream] else { return Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue) }
        var written = 0
        while written < target.count, var head = entry.outbound.first {
            let count = min(head.readableBytes, target.count - written)
            head.withUnsafeReadableBytes { bytes in
                UnsafeMutableRawBufferPointer(rebasing: target[written..<written + count]).copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[0..<count]))
            }
            head.moveReaderIndex(forwardBy: count)
            written += count
            if head.readableBytes == 0 {
                entry.outbound.removeFirst()
            } else {
                entry.outbound[entry.outbound.startIndex] = head
            }
        }
        if written == 0 && !entry.ending {
            entry.deferred = true
            self.streams[stream] = entry
            return Int(NGHTTP2_ERR_DEFERRED.rawValue)
        }
        if entry.ending && entry.outbound.isEmpty { flags.pointee |= UInt32(NGHTTP2_DATA_FLAG_EOF.rawValue) }
        self.streams[stream] = entry
        return written
    }
}

private let callbackFailure = Int32(NGHTTP2_ERR_CALLBACK_FAILURE.rawValue)

private let onHeader: nghttp2_on_header_callback = { _, frame, name, nameLength, value, valueLength, _, userData in
    guard let frame, frame.pointee.hd.type == UInt8(NGHTTP2_HEADERS.rawValue), let name, let value else { return 0 }
    guard let client = H2EchoClient.from(userData) else { return callbackFailure }
    if nameLength == 7, String(decoding: UnsafeRawBufferPointer(start: name, count: nameLength), as: UTF8.self) == ":status" {
        let status = Int(String(decoding: UnsafeRawBufferPointer(start: value, count: valueLength), as: UTF8.self)) ?? 0
        client.record(.status(stream: frame.pointee.hd.stream_id, status))
    }
    return 0
}

private let onFrameReceived: nghttp2_on_frame_recv_callback = { _, frame, userData in
    guard let frame else { return 0 }
    guard let client = H2EchoClient.from(userData) else { return callbackFailure }
    if frame.pointee.hd.type == UInt8(NGHTTP2_SETTINGS.rawValue), frame.pointee.hd.flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) == 0 {
        client.record(.settings)
    }
    return 0
}

private let onDataChunk: nghttp2_on_data_chunk_recv_callback = { _, _, stream, data, length, userData in
    guard let client = H2EchoClient.from(userData) else { return callbackFailure }
    client.record(.data(stream: stream, ByteBuffer(bytes: UnsafeRawBufferPointer(start: data, count: length))))
    return 0
}

private let onStreamClose: nghttp2_on_stream_close_callback = { _, stream, errorCode, userData in
    guard let client = H2EchoClient.from(userData) else { return callbackFailure }
    client.record(.closed(stream: stream, errorCode: errorCode))
    return 0
}

private let readCallback: wsgate_read_callback = { _, stream, buffer, length, flags, userData in
    guard let client = H2EchoClient.from(userData), let buffer, let flags else { return Int(NGHTTP2_ERR_CALLBACK_FAILURE.rawValue) }
    return client.read(stream: stream, into: UnsafeMutableRawBufferPointer(start: buffer, count: length), flags: flags)
}
