import NIOCore
import Testing
@testable import WSGate

/// Raw HTTP/2 frames for driving the server session without a network (RFC 9113 §4, RFC 7541 literals).
enum H2 {
    static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

    static func frame(type: UInt8, flags: UInt8 = 0, stream: UInt32 = 0, _ payload: [UInt8] = []) -> [UInt8] {
        let length = payload.count
        var bytes: [UInt8] = [UInt8(truncatingIfNeeded: length >> 16), UInt8(truncatingIfNeeded: length >> 8), UInt8(truncatingIfNeeded: length), type, flags]
        bytes.append(UInt8(truncatingIfNeeded: stream >> 24) & 0x7F)
        bytes.append(UInt8(truncatingIfNeeded: stream >> 16))
        bytes.append(UInt8(truncatingIfNeeded: stream >> 8))
        bytes.append(UInt8(truncatingIfNeeded: stream))
        return bytes + payload
    }

    static func settings(_ entries: [(UInt16, UInt32)] = []) -> [UInt8] {
        var payload: [UInt8] = []
        for (id, value) in entries {
            payload.append(UInt8(id >> 8))
            payload.append(UInt8(id & 0xFF))
            for shift in [24, 16, 8, 0] { payload.append(UInt8(truncatingIfNeeded: value >> UInt32(shift))) }
        }
        return self.frame(type: 4, payload)
    }

    static let settingsAck = frame(type: 4, flags: 1)

    /// HEADERS with END_HEADERS, every field a literal without indexing (no Huffman).
    static func headers(stream: UInt32, _ fields: [(String, String)], endStream: Bool = false) -> [UInt8] {
        var block: [UInt8] = []
        for (name, value) in fields {
            block.append(0x00)
            block += self.string(name)
            block += self.string(value)
        }
        return self.frame(type: 1, flags: 0x4 | (endStream ? 0x1 : 0), stream: stream, block)
    }

    static func string(_ text: String) -> [UInt8] {
        let bytes = Array(text.utf8)
        precondition(bytes.count < 127, "short strings only")
        return [UInt8(bytes.count)] + bytes
    }

    static func data(stream: UInt32, _ payload: [UInt8], endStream: Bool = false) -> [UInt8] {
        self.frame(type: 0, flags: endStream ? 1 : 0, stream: stream, payload)
    }

    struct Frame {
        var type: UInt8
        var flags: UInt8
        var stream: UInt32
        var payload: [UInt8]
    }

    static func parse(_ buffer: ByteBuffer) -> [Frame] {
        var bytes = Array(buffer.readableBytesView)[...]
        var frames: [Frame] = []
        while bytes.count >= 9 {
            let b = Array(bytes.prefix(9))
            let length = b[0..<3].reduce(0) { $0 << 8 | Int($1) }
            let stream = b[5..<9].reduce(UInt32(0)) { $0 << 8 | UInt32($1) } & 0x7FFF_FFFF
            frames.append(Frame(type: b[3], flags: b[4], stream: stream, payload: Array(bytes.dropFirst(9).prefix(length))))
            bytes = bytes.dropFirst(9 + length)
        }
        return frames
    }
}

@Suite struct NGHTTP2SessionTests {
    static let webSocketRequest: [(String, String)] = [
        (":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "https"), (":path", "/chat?x=1"),
        (":authority", "gw.example"), ("sec-websocket-version", "13"), ("origin", "https://app.example"),
    ]

    func output(_ session: NGHTTP2ServerSession) throws -> [H2.Frame] {
        try H2.parse(self.written(session))
    }

    /// What one send pass writes, each buffer as it would go to the socket, then joined.
    func writes(_ session: NGHTTP2ServerSession) throws -> [ByteBuffer] {
        try session.send()
        return session.takeOutput()
    }

    func written(_ session: NGHTTP2ServerSession) throws -> ByteBuffer {
        var joined = ByteBuffer()
        for var buffer in try self.writes(session) { joined.writeBuffer(&buffer) }
        return joined
    }

    /// A data source over `queue` (shared with the test), as a stream's is: lengths first, bytes
    /// taken only when the frame is written.
    static func serve(_ session: NGHTTP2ServerSession, from queue: Queue) {
        session.readData = { _, limit in
            guard queue.bytes.readableBytes > 0 || queue.end else { return .deferred }
            let count = min(limit, queue.bytes.readableBytes)
            return .bytes(count, endStream: queue.end && count == queue.bytes.readableBytes)
        }
        session.takeData = { _, count, output in
            guard let slice = queue.bytes.readSlice(length: count) else { return false }
            output.append(payload: slice)
            return true
        }
    }

    /// Stream 1 opened and answered 200 with a body from a queue, its HEADERS already sent.
    func answeredStream() throws -> (NGHTTP2ServerSession, Queue) {
        let session = try self.open()
        _ = try session.receive(ByteBuffer(bytes: H2.headers(stream: 1, Self.webSocketRequest)))
        let queue = Queue()
        Self.serve(session, from: queue)
        try session.submitResponse(stream: 1, status: 200, hasBody: true)
        _ = try self.output(session)
        return (session, queue)
    }

    final class Queue {
        var bytes = ByteBuffer()
        var end = false
    }

    /// A session past the preface and SETTINGS exchange.
    func open(maxHeaderListSize: UInt32? = nil) throws -> NGHTTP2ServerSession {
        var settings = HTTP2Settings()
        if let maxHeaderListSize { settings.maxHeaderListSize = maxHeaderListSize }
        let session = try NGHTTP2ServerSession(settings: settings)
        _ = try session.receive(ByteBuffer(bytes: H2.preface + H2.settings() + H2.settingsAck))
        return session
    }

    @Test func serverSettingsEnableExtendedConnect() throws {
        let session = try NGHTTP2ServerSession(settings: HTTP2Settings())
        let frames = try self.output(session)
        let settings = try #require(frames.first { $0.type == 4 && $0.flags == 0 })
        var entries: [UInt16: UInt32] = [:]
        for i in stride(from: 0, to: settings.payload.count, by: 6) {
            let p = settings.payload
            let id = p[i..<(i + 2)].reduce(UInt16(0)) { $0 << 8 | UInt16($1) }
            entries[id] = p[(i + 2)..<(i + 6)].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        }
        #expect(entries[0x8] == 1)  // ENABLE_CONNECT_PROTOCOL
        #expect(entries[0x3] == 128)  // MAX_CONCURRENT_STREAMS
        #expect(entries[0x4] == 65535)  // INITIAL_WINDOW_SIZE
        // And the connection window is opened beyond the default.
        #expect(frames.contains { $0.type == 8 && $0.stream == 0 })
    }

    @Test func extendedConnectBecomesARequestEvent() throws {
        let session = try self.open()
        let events = try session.receive(ByteBuffer(bytes: H2.headers(stream: 1, Self.webSocketRequest)))
        guard case .request(let stream, let headers, let endStream) = try #require(events.first) else {
            Issue.record("expected a request, got \(events)")
            return
        }
        #expect(stream == 1)
        #expect(!endStream)
        #expect(headers.first { $0.name == ":protocol" }?.value == "websocket")
        #expect(headers.first { $0.name == "origin" }?.value == "https://app.example")
    }

    @Test func protocolPseudoHeaderIsRefusedOnPlainRequests() throws {
        // :protocol is only valid with CONNECT (RFC 8441 §4): nghttp2 resets the stream, not the connection.
        let session = try self.open()
        let events = try session.receive(ByteBuffer(bytes: H2.headers(stream: 1, [(":method", "GET"), (":protocol", "websocket"), (":scheme", "https"), (":path", "/"), (":authority", "a")])))
        #expect(!events.contains { if case .request = $0 { return true } else { return false } })
        #expect(try self.output(session).contains { $0.type == 3 && $0.stream == 1 })  // RST_STREAM
    }

    @Test func streamWindowOpensOnlyWhenConsumed() throws {
        let session = try self.open()
        _ = try session.receive(ByteBuffer(bytes: H2.headers(stream: 1, Self.webSocketRequest)))
        _ = try self.output(session)
        let chunk = [UInt8](repeating: 7, count: 13_000)  // under the 16 KiB default frame size
        let events = try session.receive(ByteBuffer(bytes: H2.data(stream: 1, chunk) + H2.data(stream: 1, chunk) + H2.data(stream: 1, chunk)))
        var received = 0
        for case .data(1, let data) in events { received += data.readableBytes }
        #expect(received == 39_000)
        // Not consumed: the connection window may reopen, the stream's must not.
        #expect(!(try self.output(session)).contains { $0.type == 8 && $0.stream == 1 })
        try session.consume(stream: 1, bytes: 39_000)
        #expect(try self.output(session).contains { $0.type == 8 && $0.stream == 1 })
    }

    @Test func responseBodyComesFromTheDataSourceAndCanBeDeferred() throws {
        let session = try self.open()
        _ = try session.receive(ByteBuffer(bytes: H2.headers(stream: 1, Self.webSocketRequest)))
        let queue = Queue()
        Self.serve(session, from: queue)
        try session.submitResponse(stream: 1, status: 200, headers: [("sec-websocket-protocol", "chat")], hasBody: true)
        let first = try self.output(session)
        #expect(first.contains { $0.type == 1 && $0.stream == 1 })  // HEADERS
        #expect(!first.contains { $0.type == 0 })  // no DATA yet: deferred
        queue.bytes = ByteBuffer(string: "frame bytes")
        try session.resumeData(stream: 1)
        let second = try self.output(session)
        #expect(second.first { $0.type == 0 }?.payload == Array("frame bytes".utf8))
        queue.end = true
        try session.resumeData(stream: 1)
        #expect(try self.output(session).contains { $0.type == 0 && $0.flags & 1 == 1 })  // END_STREAM
    }

    /// A large payload is written as the buffer it came in (no copy through nghttp2), between frame
    /// bytes that are; small ones are copied in with the frames around them. Either way the bytes on
    /// the wire are the same frames.
    @Test func largePayloadsGoOutAsTheirOwnBuffersAndSmallOnesAreCopied() throws {
        let (session, queue) = try self.answeredStream()

        let large = ByteBuffer(bytes: (0..<8000).map { UInt8(truncatingIfNeeded: $0) })
        queue.bytes = large
        try session.resumeData(stream: 1)
        let writes = try self.writes(session)
        #expect(writes.count == 2, "the frame header, then the payload as it was")
        let payload = try #require(writes.last)
        #expect(payload == large)
        payload.withUnsafeReadableBytes { sent in
            large.withUnsafeReadableBytes { original in #expect(sent.baseAddress == original.baseAddress, "the same memory, not a copy") }
        }
        var joined = ByteBuffer()
        for var buffer in writes { joined.writeBuffer(&buffer) }
        #expect(H2.parse(joined).first { $0.type == 0 }?.payload == Array(large.readableBytesView))

        queue.bytes = ByteBuffer(string: "small")
        try session.resumeData(stream: 1)
        let small = try self.writes(session)
        #expect(small.count == 1)
        #expect(H2.parse(small[0]).first { $0.type == 0 }?.payload == Array("small".utf8))
    }

    /// A payload bigger than one frame is split over frames, each carrying the next part of the queue.
    @Test func aQueueLongerThanAFrameIsSplitInOrder() throws {
        let (session, queue) = try self.answeredStream()
        let bytes = (0..<40_000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        queue.bytes = ByteBuffer(bytes: bytes)
        queue.end = true
        try session.resumeData(stream: 1)
        let data = try self.output(session).filter { $0.type == 0 }
        #expect(data.count == 3, "16 KiB frames")
        #expect(data.flatMap(\.payload) == bytes)
        #expect(data.last?.flags == 1 && data.dropLast().allSatisfy { $0.flags == 0 }, "END_STREAM on the last only")
    }

    /// Received DATA is a slice of the buffer it arrived in, not a copy.
    @Test func receivedDataSharesTheReceivedBuffer() throws {
        let session = try self.open()
        _ = try session.receive(ByteBuffer(bytes: H2.headers(stream: 1, Self.webSocketRequest)))
        let chunk = [UInt8](repeating: 9, count: 5000)
        let received = ByteBuffer(bytes: H2.data(stream: 1, chunk))
        let events = try session.receive(received)
        guard case .data(1, let data) = try #require(events.first) else {
            Issue.record("expected DATA, got \(events)")
            return
        }
        #expect(Array(data.readableBytesView) == chunk)
        data.withUnsafeReadableBytes { payload in
            received.withUnsafeReadableBytes { wire in #expect(payload.baseAddress == wire.baseAddress.map { $0 + 9 }) }
        }
    }

    /// Calls on streams that are gone or were never opened are what a peer's timing produces (a
    /// reset crossing our write): not failures. Stream 0 is a programming error nghttp2 reports.
    @Test func streamCallsOnStreamsThatAreGoneAreNoFailures() throws {
        let session = try self.open()
        try session.resumeData(stream: 9)
        try session.consume(stream: 9, bytes: 100)
        try session.submitReset(stream: 9, errorCode: NGHTTP2ServerSession.ErrorCode.cancel)
        #expect(session.clientEnded(stream: 9))
        #expect(throws: NGHTTP2ServerSession.Failure.self) { try session.submitReset(stream: 0, errorCode: NGHTTP2ServerSession.ErrorCode.cancel) }
        #expect(throws: NGHTTP2ServerSession.Failure.self) { try session.consume(stream: 0, bytes: 100) }
    }

    @Test func goAwayNamesTheLastStreamProcessed() throws {
        let session = try self.open()
        _ = try session.receive(ByteBuffer(bytes: H2.headers(stream: 3, Self.webSocketRequest)))
        _ = try self.output(session)
        try session.goAway(errorCode: NGHTTP2ServerSession.ErrorCode.noError)
        let goAway = try #require(try self.output(session).first { $0.type == 7 })
        #expect(goAway.payload.prefix(4) == [0, 0, 0, 3])
        #expect(goAway.payload.dropFirst(4).prefix(4) == [0, 0, 0, 0])
    }

    /// The header list is bounded as it is decoded: past SETTINGS_MAX_HEADER_LIST_SIZE the request
    /// becomes a verdict without fields (the connection stays usable: HPACK state is kept).
    @Test func headerListsLargerThanAdvertisedAreDroppedWhileDecoding() throws {
        let session = try self.open(maxHeaderListSize: 1024)
        let filler = String(repeating: "a", count: 100)
        let big = Self.webSocketRequest + (0..<10).map { ("x-filler-\($0)", filler) }  // 10 × 142 bytes
        let events = try session.receive(ByteBuffer(bytes: H2.headers(stream: 1, big)))
        guard case .headersTooLarge(1, 1024) = try #require(events.first) else {
            Issue.record("expected headersTooLarge, got \(events)")
            return
        }
        #expect(events.count == 1)
        // The next request on the same connection is whole.
        let next = try session.receive(ByteBuffer(bytes: H2.headers(stream: 3, Self.webSocketRequest)))
        guard case .request(3, let headers, _) = try #require(next.first) else {
            Issue.record("expected a request, got \(next)")
            return
        }
        #expect(headers.count == Self.webSocketRequest.count)
    }

    /// Past four times the limit the stream is reset (ENHANCE_YOUR_CALM) instead of decoded field
    /// by field to the end: nghttp2 checks every field it hands over, so an HPACK bomb cost 4 KB of
    /// scanning per byte sent. The connection stays usable: the rest of the block is still decoded
    /// into the HPACK table.
    @Test func headerListsFarLargerThanAdvertisedResetTheirStream() throws {
        let session = try self.open(maxHeaderListSize: 1024)
        let filler = String(repeating: "a", count: 100)
        let huge = Self.webSocketRequest + (0..<40).map { ("x-filler-\($0)", filler) }  // 40 × 142 bytes: past 4 × 1024
        let events = try session.receive(ByteBuffer(bytes: H2.headers(stream: 1, huge)))
        #expect(events.contains { if case .headersCutOff(1, 1024) = $0 { return true } else { return false } }, "\(events)")
        #expect(!events.contains { if case .request = $0 { return true } else { return false } }, "\(events)")
        let reset = try self.output(session).first { $0.type == 3 && $0.stream == 1 }
        #expect(reset?.payload == [0, 0, 0, 11], "RST_STREAM ENHANCE_YOUR_CALM")
        // The reset closed stream 1 as it was sent; the next request on the connection is whole.
        let next = try session.receive(ByteBuffer(bytes: H2.headers(stream: 3, Self.webSocketRequest)))
        #expect(next.contains { if case .streamClosed(1, 11) = $0 { return true } else { return false } }, "\(next)")
        let request = next.lazy.compactMap { event -> [(name: String, value: String)]? in
            if case .request(3, let headers, _) = event { return headers } else { return nil }
        }.first
        #expect(request?.count == Self.webSocketRequest.count, "\(next)")
    }

    /// Trailers are measured as they are decoded too (never kept): past four times the limit their
    /// stream is reset like a request's.
    @Test func trailersFarLargerThanAdvertisedResetTheirStream() throws {
        let session = try self.open(maxHeaderListSize: 1024)
        _ = try session.receive(ByteBuffer(bytes: H2.headers(stream: 1, [(":method", "POST"), (":scheme", "https"), (":path", "/"), (":authority", "a")])))
        let filler = String(repeating: "a", count: 100)
        let events = try session.receive(ByteBuffer(bytes: H2.headers(stream: 1, (0..<40).map { ("x-trailer-\($0)", filler) }, endStream: true)))
        #expect(events.contains { if case .headersCutOff(1, 1024) = $0 { return true } else { return false } }, "\(events)")
        #expect(try self.output(session).contains { $0.type == 3 && $0.stream == 1 && $0.payload == [0, 0, 0, 11] })
    }

    /// Trailers are not a second request on their stream.
    @Test func trailersAreNotARequest() throws {
        let session = try self.open()
        _ = try session.receive(ByteBuffer(bytes: H2.headers(stream: 1, [(":method", "POST"), (":scheme", "https"), (":path", "/"), (":authority", "a")])))
        let events = try session.receive(ByteBuffer(bytes: H2.data(stream: 1, [1, 2, 3]) + H2.headers(stream: 1, [("x-trailer", "1")], endStream: true)))
        #expect(!events.contains { if case .request = $0 { return true } else { return false } }, "\(events)")
        #expect(events.contains { if case .endStream(1) = $0 { return true } else { return false } }, "\(events)")
    }

    @Test func garbageIsAConnectionError() throws {
        let session = try NGHTTP2ServerSession(settings: HTTP2Settings())
        #expect(throws: NGHTTP2ServerSession.Failure.self) {
            _ = try session.receive(ByteBuffer(string: "GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
        }
    }
}

@Suite struct HTTP2RequestValidatorTests {
    let routes = RouteTable([
        RouteConfiguration(path: "/chat", backend: .webSocket(host: "b", port: 1, path: nil, query: nil), subprotocols: ["v1"]),
    ])

    func decide(_ headers: [(String, String)]) -> HandshakeDecision {
        HTTP2RequestValidator.decide(headers.map { (name: $0.0, value: $0.1) }, routes: self.routes)
    }

    func status(_ headers: [(String, String)]) -> Int? {
        if case .refuse(let refusal) = self.decide(headers) { return Int(refusal.status.code) }
        return nil
    }

    static let base: [(String, String)] = [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "https"), (":path", "/chat"), (":authority", "gw"), ("sec-websocket-version", "13")]

    @Test func validExtendedConnectIsAnUpgradeWithHost() {
        guard case .upgrade(let request) = self.decide(Self.base + [("sec-websocket-protocol", "v2, v1")]) else {
            Issue.record("expected a WebSocket")
            return
        }
        #expect(request.subprotocols == ["v1"])
        #expect(request.head.headers.first(name: "host") == "gw")
        #expect(request.head.uri == "/chat")
    }

    @Test func refusals() {
        #expect(self.status(Self.base.map { $0.0 == ":path" ? ($0.0, "/nope") : $0 }) == 404)
        #expect(self.status(Self.base.map { $0.0 == "sec-websocket-version" ? ($0.0, "8") : $0 }) == 426)
        #expect(self.status(Self.base + [("sec-websocket-protocol", "other")]) == 400)
        #expect(self.status([(":method", "GET"), (":scheme", "https"), (":path", "/chat"), (":authority", "gw")]) == 426)
        #expect(self.status(Self.base.map { $0.0 == ":protocol" ? ($0.0, "connect-udp") : $0 }) == 501)
        if case .probe(.health) = self.decide([(":method", "GET"), (":scheme", "https"), (":path", "/healthz"), (":authority", "gw")]) {} else {
            Issue.record("expected health")
        }
    }
}
