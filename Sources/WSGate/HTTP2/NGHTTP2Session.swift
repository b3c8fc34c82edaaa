import CNghttp2
import NIOCore

/// The one place that touches libnghttp2: an I/O-agnostic HTTP/2 server session. Bytes from the
/// connection go in through ``receive(_:)``; bytes to send come out of ``send()`` and
/// ``takeOutput()``. nghttp2's
/// C callbacks only record ``Event``s (they never call back into nghttp2), which the caller handles
/// once `receive` has returned.
///
/// Automatic WINDOW_UPDATEs are off: the caller reports with ``consume(stream:bytes:)`` when a
/// backend has taken a stream's bytes, so HTTP/2 flow control follows backend backpressure.
final class NGHTTP2ServerSession {
    typealias Settings = HTTP2Settings

    /// Receive window of the whole connection (RFC 9113 §6.9.2).
    static let connectionWindow = 1 << 20

    enum Event {
        /// A complete header block. `endStream` when the HEADERS frame ended the stream.
        case request(streamID: Int32, headers: [(name: String, value: String)], endStream: Bool)
        case data(streamID: Int32, ByteBuffer)
        /// The client ended its side of the stream on a DATA frame.
        case endStream(streamID: Int32)
        case streamClosed(streamID: Int32, errorCode: UInt32)
        /// A request header block larger than the advertised SETTINGS_MAX_HEADER_LIST_SIZE: its
        /// fields were dropped as they were decoded (answer 431).
        case headersTooLarge(streamID: Int32, limit: Int)
        /// A header block that kept growing past ``cutOffFactor`` times the limit: the stream is
        /// reset (ENHANCE_YOUR_CALM) and the rest of the block decoded without being looked at.
        case headersCutOff(streamID: Int32, limit: Int)
    }

    /// How far past the limit a header block is decoded field by field before its stream is reset.
    /// nghttp2 checks every field it decodes for the application (RFC 9113 §8.2.1), so a block of
    /// one-byte references to a 4 KB table entry costs 4 KB of scanning per byte sent; once its
    /// stream is reset, nghttp2 decodes the rest without that check. Up to this point the client
    /// gets a 431 it can read.
    static let cutOffFactor = 4

    /// A request's header block as it is decoded. A few bytes of HPACK table references can decode
    /// to megabytes, so its size (RFC 7541 §4.1: name + value + 32 per field) is bounded by the
    /// limit the server advertised; past it the fields are dropped and only the verdict is kept.
    private struct HeaderBlock {
        /// Trailers (a later HEADERS on the stream) are measured, never kept.
        var isTrailers = false
        var fields: [(name: String, value: String)] = []
        var size = 0
        var tooLarge = false
    }

    /// What a stream has for its next DATA frame; its bytes are taken only when the frame is
    /// written (``takeData``), which nghttp2 skips for a stream closed in between.
    enum DataRead {
        case bytes(Int, endStream: Bool)
        /// Nothing to send yet: the stream waits for ``resumeData(stream:)``.
        case deferred
    }

    struct Failure: Error, CustomStringConvertible {
        var function: String
        var code: Int
        var description: String { "\(self.function) failed: \(String(cString: nghttp2_strerror(Int32(truncatingIfNeeded: self.code))))" }
    }

    /// Set once, never nil after `init`: a `let`, so no access pays a dynamic exclusivity check.
    private let session: OpaquePointer
    private var events: [Event] = []
    private var headerBlocks: [Int32: HeaderBlock] = [:]
    private let maxHeaderListSize: Int
    /// How many bytes (at most the second argument) a stream's next DATA frame carries; set by the
    /// connection before the first response with a body.
    var readData: ((Int32, Int) -> DataRead)?
    /// Appends exactly that many bytes of the stream's queue to the output; false if it cannot.
    var takeData: ((Int32, Int, inout HTTP2Output) -> Bool)?
    /// What ``send()`` produced and ``takeOutput()`` has not taken yet (DATA payloads go in from
    /// nghttp2's send-data callback).
    private var output = HTTP2Output(allocator: ByteBufferAllocator())
    /// The buffer ``receive(_:)`` is reading and where its bytes start, so DATA payloads can be
    /// slices of it rather than copies.
    private var receiving: (buffer: ByteBuffer, base: UnsafeRawPointer)?

    init(settings: Settings) throws {
        self.maxHeaderListSize = Int(settings.maxHeaderListSize)
        var callbacks: OpaquePointer?
        try Self.check(nghttp2_session_callbacks_new(&callbacks), "nghttp2_session_callbacks_new")
        defer { nghttp2_session_callbacks_del(callbacks) }
        nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, onBeginHeaders)
        nghttp2_session_callbacks_set_on_header_callback(callbacks, onHeader)
        nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, onFrameReceived)
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, onDataChunk)
        nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, onStreamClose)
        nghttp2_session_callbacks_set_send_data_callback(callbacks, onSendData)

        var option: OpaquePointer?
        try Self.check(nghttp2_option_new(&option), "nghttp2_option_new")
        defer { nghttp2_option_del(option) }
        nghttp2_option_set_no_auto_window_update(option, 1)

        var created: OpaquePointer?
        try Self.check(nghttp2_session_server_new2(&created, callbacks, nil, option), "nghttp2_session_server_new2")
        guard let created else { throw Failure(function: "nghttp2_session_server_new2", code: Int(NGHTTP2_ERR_NOMEM.rawValue)) }
        self.session = created
        // The callbacks find this object through user data, set once every property is.
        nghttp2_session_set_user_data(created, Unmanaged.passUnretained(self).toOpaque())

        var entries = [
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS.rawValue), value: settings.maxConcurrentStreams),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue), value: settings.initialWindowSize),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE.rawValue), value: settings.maxHeaderListSize),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL.rawValue), value: 1),
        ]
        try Self.check(nghttp2_submit_settings(self.session, UInt8(NGHTTP2_FLAG_NONE.rawValue), &entries, entries.count), "nghttp2_submit_settings")
        // A connection window well above one stream's, so several streams can have DATA in flight.
        try Self.check(nghttp2_session_set_local_window_size(self.session, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0, Int32(Self.connectionWindow)),
                       "nghttp2_session_set_local_window_size")
    }

    /// nghttp2 returns 0 on success and a negative `nghttp2_error` otherwise.
    private static func check(_ result: Int32, _ function: String) throws {
        guard result == 0 else { throw Failure(function: function, code: Int(result)) }
    }

    deinit {
        nghttp2_session_del(self.session)
    }

    /// Feeds received bytes; returns what they meant. Throws on a connection-level protocol error
    /// (nghttp2 has then queued a GOAWAY: send it, then close).
    func receive(_ buffer: ByteBuffer) throws -> [Event] {
        let consumed = buffer.withUnsafeReadableBytes { bytes in
            self.receiving = bytes.baseAddress.map { (buffer, UnsafeRawPointer($0)) }
            defer { self.receiving = nil }
            return wsgate_session_mem_recv(self.session, bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count)
        }
        let events = self.takeEvents()
        if consumed < 0 { throw Failure(function: "nghttp2_session_mem_recv", code: consumed) }
        var received = 0
        for case .data(_, let data) in events { received += data.readableBytes }
        if received > 0 { try Self.check(nghttp2_session_consume_connection(self.session, received), "nghttp2_session_consume_connection") }
        return events
    }

    /// What happened while frames were sent: streams our own END_STREAM or RST_STREAM closed
    /// (nghttp2 closes them as it sends). Left for the next ``receive(_:)`` they would wait for the
    /// client's next bytes, which a silent client never sends.
    func takeEvents() -> [Event] {
        let events = self.events
        self.events.removeAll(keepingCapacity: true)
        return events
    }

    /// Serialises every frame nghttp2 has ready, for ``takeOutput()``.
    func send() throws {
        while true {
            var data: UnsafePointer<UInt8>?
            let count = wsgate_session_mem_send(self.session, &data)
            if count < 0 { throw Failure(function: "nghttp2_session_mem_send", code: count) }
            guard count > 0, let data else { return }
            self.output.append(bytes: UnsafeRawBufferPointer(start: data, count: count))
        }
    }

    /// The buffers to write for what ``send()`` produced, in order (empty when nothing).
    func takeOutput() -> [ByteBuffer] {
        self.output.finish()
    }

    var wantsRead: Bool { nghttp2_session_want_read(self.session) != 0 }
    var wantsWrite: Bool { nghttp2_session_want_write(self.session) != 0 }

    /// Answers a stream; with `hasBody` its DATA comes from ``readData``.
    func submitResponse(stream: Int32, status: Int, headers: [(String, String)] = [], hasBody: Bool) throws {
        let all = [(":status", String(status))] + headers.map { ($0.0.lowercased(), $0.1) }
        let result: Int32 = NGHTTP2HeaderVector.with(all) { vector, count in
            wsgate_submit_response(self.session, stream, vector, count, hasBody ? readCallback : nil)
        }
        try Self.check(result, "nghttp2_submit_response")
    }

    /// RST_STREAM and GOAWAY codes we send (RFC 9113 §7).
    enum ErrorCode {
        static let noError = UInt32(NGHTTP2_NO_ERROR.rawValue)
        static let internalError = UInt32(NGHTTP2_INTERNAL_ERROR.rawValue)
        static let refusedStream = UInt32(NGHTTP2_REFUSED_STREAM.rawValue)
        static let cancel = UInt32(NGHTTP2_CANCEL.rawValue)
        static let enhanceYourCalm = UInt32(NGHTTP2_ENHANCE_YOUR_CALM.rawValue)
    }

    /// Whether the client has ended its side of the stream: 1 when it has, 0 when not, -1 for a
    /// stream nghttp2 no longer knows (closed, so ended too).
    func clientEnded(stream: Int32) -> Bool {
        nghttp2_session_get_stream_remote_close(self.session, stream) != 0
    }

    /// Queues RST_STREAM. nghttp2 accepts it for any stream but 0, known or not (RFC 9113 §5.4.2).
    func submitReset(stream: Int32, errorCode: UInt32) throws {
        try Self.check(nghttp2_submit_rst_stream(self.session, UInt8(NGHTTP2_FLAG_NONE.rawValue), stream, errorCode), "nghttp2_submit_rst_stream")
    }

    /// More DATA is ready for a stream whose read returned ``DataRead/deferred``. A stream that is
    /// gone or not deferred (its source is being read anyway) is nghttp2's INVALID_ARGUMENT: nothing
    /// to resume, not a failure.
    func resumeData(stream: Int32) throws {
        let result = nghttp2_session_resume_data(self.session, stream)
        guard result != Int32(NGHTTP2_ERR_INVALID_ARGUMENT.rawValue) else { return }
        try Self.check(result, "nghttp2_session_resume_data")
    }

    /// Reports `bytes` of a stream's DATA as taken by its backend, opening the stream's window again.
    /// The connection window is reopened as soon as DATA arrives (in ``receive(_:)``): holding it
    /// for one slow stream would stall every other stream on the connection.
    /// A stream nghttp2 has already closed is ignored by nghttp2 (returns 0).
    func consume(stream: Int32, bytes: Int) throws {
        guard bytes > 0 else { return }
        try Self.check(nghttp2_session_consume_stream(self.session, stream, bytes), "nghttp2_session_consume_stream")
    }

    /// GOAWAY: no new streams; open ones may finish.
    func goAway(errorCode: UInt32 = ErrorCode.noError) throws {
        let last = nghttp2_session_get_last_proc_stream_id(self.session)
        try Self.check(nghttp2_submit_goaway(self.session, UInt8(NGHTTP2_FLAG_NONE.rawValue), last, errorCode, nil, 0), "nghttp2_submit_goaway")
    }

    // MARK: Callback targets

    fileprivate static func from(_ userData: UnsafeMutableRawPointer?) -> NGHTTP2ServerSession? {
        userData.map { Unmanaged<NGHTTP2ServerSession>.fromOpaque($0).takeUnretainedValue() }
    }

    fileprivate func beginHeaders(stream: Int32, isTrailers: Bool) {
        self.headerBlocks[stream] = HeaderBlock(isTrailers: isTrailers)
    }

    /// False once the block is past ``cutOffFactor`` times the limit: the caller resets the stream.
    fileprivate func header(stream: Int32, name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) -> Bool {
        guard var block = self.headerBlocks[stream] else { return true }
        block.size += name.count + value.count + 32
        if block.size > self.maxHeaderListSize * Self.cutOffFactor {
            self.headerBlocks[stream] = nil
            self.events.append(.headersCutOff(streamID: stream, limit: self.maxHeaderListSize))
            return false
        }
        if block.size > self.maxHeaderListSize {
            block.fields = []  // the fields go; only the verdict (and the size) is kept
            block.tooLarge = true
        } else if !block.isTrailers {
            block.fields.append((String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self)))
        }
        self.headerBlocks[stream] = block
        return true
    }

    fileprivate func frameReceived(type: UInt8, flags: UInt8, stream: Int32) {
        let endStream = flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
        switch UInt32(type) {
        case NGHTTP2_HEADERS.rawValue:
            if let block = self.headerBlocks.removeValue(forKey: stream), !block.isTrailers {
                if block.tooLarge {
                    self.events.append(.headersTooLarge(streamID: stream, limit: self.maxHeaderListSize))
                } else {
                    self.events.append(.request(streamID: stream, headers: block.fields, endStream: endStream))
                }
            } else if endStream {
                self.events.append(.endStream(streamID: stream))  // trailers
            }
        case NGHTTP2_DATA.rawValue where endStream:
            self.events.append(.endStream(streamID: stream))
        default:
            break
        }
    }

    /// A DATA payload points into the buffer being received (nghttp2 copies only padded ones): it
    /// becomes a slice of that buffer, sharing its memory, instead of a copy.
    fileprivate func dataChunk(stream: Int32, bytes: UnsafeRawBufferPointer) {
        if let (buffer, base) = self.receiving, let start = bytes.baseAddress {
            let offset = UnsafeRawPointer(start) - base
            if offset >= 0, offset + bytes.count <= buffer.readableBytes,
               let slice = buffer.getSlice(at: buffer.readerIndex + offset, length: bytes.count) {
                self.events.append(.data(streamID: stream, slice))
                return
            }
        }
        self.events.append(.data(streamID: stream, ByteBuffer(bytes: bytes)))
    }

    fileprivate func streamClosed(stream: Int32, errorCode: UInt32) {
        self.headerBlocks[stream] = nil
        self.events.append(.streamClosed(streamID: stream, errorCode: errorCode))
    }

    /// nghttp2 packs a DATA frame: how long it is. Its bytes go out in ``sendData(stream:header:length:padding:)``.
    fileprivate func read(stream: Int32, length: Int, flags: UnsafeMutablePointer<UInt32>) -> Int {
        guard let readData = self.readData else {
            flags.pointee |= UInt32(NGHTTP2_DATA_FLAG_EOF.rawValue)
            return 0
        }
        switch readData(stream, length) {
        case .deferred:
            return Int(NGHTTP2_ERR_DEFERRED.rawValue)
        case .bytes(let count, let endStream):
            flags.pointee |= UInt32(NGHTTP2_DATA_FLAG_NO_COPY.rawValue)
            if endStream { flags.pointee |= UInt32(NGHTTP2_DATA_FLAG_EOF.rawValue) }
            return min(count, length)
        }
    }

    /// nghttp2 sends a DATA frame packed by ``read(stream:length:flags:)``: its 9-byte header, the
    /// pad length when padded, `length` bytes of the stream's queue, the padding (RFC 9113 §6.1).
    /// False when the queue cannot give those bytes: the frame would be corrupt, so the session fails.
    fileprivate func sendData(stream: Int32, header: UnsafeRawBufferPointer, length: Int, padding: Int) -> Bool {
        guard let takeData = self.takeData else { return false }
        self.output.append(bytes: header)
        if padding > 0 {
            withUnsafeBytes(of: UInt8(truncatingIfNeeded: padding - 1)) { self.output.append(bytes: $0) }
        }
        guard takeData(stream, length, &self.output) else { return false }
        if padding > 1 { self.output.appendZeros(padding - 1) }
        return true
    }
}

// C callbacks: each finds its session through user_data (set at creation, never nil; a missing one
// fails the call instead of trapping) and records what happened.

private let callbackFailure = Int32(NGHTTP2_ERR_CALLBACK_FAILURE.rawValue)

private let onBeginHeaders: nghttp2_on_begin_headers_callback = { _, frame, userData in
    guard let frame, frame.pointee.hd.type == UInt8(NGHTTP2_HEADERS.rawValue) else { return 0 }
    guard let session = NGHTTP2ServerSession.from(userData) else { return callbackFailure }
    session.beginHeaders(stream: frame.pointee.hd.stream_id, isTrailers: frame.pointee.headers.cat != NGHTTP2_HCAT_REQUEST)
    return 0
}

private let onHeader: nghttp2_on_header_callback = { nghttp2Session, frame, name, nameLength, value, valueLength, _, userData in
    guard let frame, frame.pointee.hd.type == UInt8(NGHTTP2_HEADERS.rawValue) else { return 0 }
    guard let session = NGHTTP2ServerSession.from(userData) else { return callbackFailure }
    let stream = frame.pointee.hd.stream_id
    let keepsDecoding = session.header(
        stream: stream,
        name: UnsafeRawBufferPointer(start: name, count: nameLength),
        value: UnsafeRawBufferPointer(start: value, count: valueLength)
    )
    guard keepsDecoding else {
        // nghttp2's documented way to reset the stream from here with a code of our choosing; if the
        // reset cannot even be queued (out of memory), the whole connection fails instead.
        let reset = nghttp2_submit_rst_stream(nghttp2Session, UInt8(NGHTTP2_FLAG_NONE.rawValue), stream, NGHTTP2ServerSession.ErrorCode.enhanceYourCalm)
        return reset == 0 ? Int32(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue) : callbackFailure
    }
    return 0
}

private let onFrameReceived: nghttp2_on_frame_recv_callback = { _, frame, userData in
    guard let frame else { return 0 }
    guard let session = NGHTTP2ServerSession.from(userData) else { return callbackFailure }
    session.frameReceived(type: frame.pointee.hd.type, flags: frame.pointee.hd.flags, stream: frame.pointee.hd.stream_id)
    return 0
}

private let onDataChunk: nghttp2_on_data_chunk_recv_callback = { _, _, stream, data, length, userData in
    guard let session = NGHTTP2ServerSession.from(userData) else { return callbackFailure }
    session.dataChunk(stream: stream, bytes: UnsafeRawBufferPointer(start: data, count: length))
    return 0
}

private let onStreamClose: nghttp2_on_stream_close_callback = { _, stream, errorCode, userData in
    guard let session = NGHTTP2ServerSession.from(userData) else { return callbackFailure }
    session.streamClosed(stream: stream, errorCode: errorCode)
    return 0
}

private let readCallback: wsgate_read_callback = { _, stream, _, length, flags, userData in
    guard let session = NGHTTP2ServerSession.from(userData), let flags else { return Int(NGHTTP2_ERR_CALLBACK_FAILURE.rawValue) }
    return session.read(stream: stream, length: length, flags: flags)
}

private let onSendData: nghttp2_send_data_callback = { _, frame, header, length, _, userData in
    guard let frame, let header, let session = NGHTTP2ServerSession.from(userData) else { return callbackFailure }
    let sent = session.sendData(stream: frame.pointee.hd.stream_id, header: UnsafeRawBufferPointer(start: header, count: 9),
                                length: length, padding: Int(frame.pointee.data.padlen))
    return sent ? 0 : callbackFailure
}
