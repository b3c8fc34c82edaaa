import NIOCore

/// An incremental, streaming WebSocket frame decoder with RFC 6455 validation.
///
/// Unlike NIO's `WebSocketFrameDecoder` it never waits for a whole frame: a data frame is reported by
/// its header, then its payload is handed out in slices of whatever each read held, unmasked in place.
/// So memory per connection does not grow with frame or message size, and a 16 MiB browser message
/// costs no more buffering than a 16-byte one. Control frames (at most 125 bytes) are collected whole.
///
/// It also enforces what a terminating endpoint must: masking by role, no reserved bits (no extension
/// is negotiated), known opcodes, unfragmented short control frames, continuation rules, close frame
/// payload rules, the message size limit and, for the client leg, UTF-8 validity of text messages
/// as the bytes arrive. The first violation throws a ``WebSocketProtocolError`` and the decoder is done.
public struct FrameDecoder {
    public enum Role: Sendable {
        /// Decodes frames sent by a client: they must be masked.
        case server
        /// Decodes frames sent by a server: they must not be masked.
        case client
    }

    public struct Configuration: Sendable {
        /// Largest message (sum of its frames' payloads) accepted; larger ones fail with 1009.
        public var maxMessageBytes: Int
        /// Whether text messages are checked for valid UTF-8 (1007 on failure).
        public var validatesUTF8: Bool
        /// Whether payload nobody here needs to read (binary, and text when not validated) is handed
        /// out still masked, as `.maskedPayload`: a relay that masks it again for the next hop then
        /// XORs once with both keys instead of unmasking and remasking.
        public var keepsMasked: Bool
        /// permessage-deflate was negotiated: RSV1 may mark a message (on its first frame) as
        /// compressed. Such messages are handed out unmasked and unvalidated: whoever inflates them
        /// checks the inflated text and size.
        public var allowsCompression: Bool
        /// Largest single data frame accepted (1009 beyond it).
        public var maxFrameBytes: Int

        public init(maxMessageBytes: Int, validatesUTF8: Bool, keepsMasked: Bool = false, allowsCompression: Bool = false, maxFrameBytes: Int? = nil) {
            self.maxMessageBytes = maxMessageBytes
            self.maxFrameBytes = maxFrameBytes ?? Int.max
            self.validatesUTF8 = validatesUTF8
            self.keepsMasked = keepsMasked
            self.allowsCompression = allowsCompression
        }
    }

    public enum Event: Equatable {
        /// A data frame begins: `length` bytes of payload follow as `.payload` events.
        /// `opcode` is `.text`, `.binary` or `.continuation`.
        case dataFrame(opcode: WebSocketOpcode, fin: Bool, length: Int)
        /// Unmasked payload bytes of the current data frame.
        case payload(ByteBuffer)
        /// Payload bytes still masked with `mask`, starting `offset` bytes into the frame's payload
        /// (only with ``Configuration/keepsMasked``).
        case maskedPayload(ByteBuffer, mask: WebSocketMask, offset: Int)
        case ping(ByteBuffer)
        case pong(ByteBuffer)
        /// `code == nil` when the frame had no payload.
        case close(code: WebSocketCloseCode?, reason: String)
    }

    private enum State {
        case header
        case dataPayload(remaining: Int, mask: WebSocketMask?, offset: Int, fin: Bool)
        case controlPayload(opcode: WebSocketOpcode, remaining: Int, mask: WebSocketMask?)
        case failed
    }

    private enum MessageKind {
        case none
        case text
        case binary
    }

    public let role: Role
    public var configuration: Configuration
    private var state: State = .header
    /// Header bytes that straddled two reads (at most 13).
    private var partialHeader: [UInt8] = []
    private var controlPayload: ByteBuffer?
    private var message: MessageKind = .none
    private var messageBytes = 0
    private var utf8 = UTF8Validator()
    /// Whether the current (or last) data message had RSV1 set on its first frame.
    public private(set) var messageIsCompressed = false

    public init(role: Role, configuration: Configuration) {
        self.role = role
        self.configuration = configuration
    }

    /// Whether a fragmented message has begun and not yet finished.
    public var isInsideMessage: Bool {
        if case .none = self.message { return false }
        return true
    }

    /// Whether the next bytes begin a frame (or finish a header split across reads).
    public var isAtFrameStart: Bool {
        if case .header = self.state { return true }
        return false
    }

    /// Decodes the next event from `buffer`, consuming what it used. Returns nil once `buffer` is
    /// exhausted (a partial header is kept internally, so the caller may drop the rest).
    public mutating func next(from buffer: inout ByteBuffer) throws(WebSocketProtocolError) -> Event? {
        while true {
            switch self.state {
            case .failed:
                return nil
            case .header:
                guard let header = self.readHeader(from: &buffer) else { return nil }
                do {
                    if let event = try self.begin(header) { return event }
                } catch {
                    self.state = .failed
                    throw error
                }
            case .dataPayload(let remaining, let mask, let offset, let fin):
                guard buffer.readableBytes > 0 else { return nil }
                let count = min(remaining, buffer.readableBytes)
                guard var slice = buffer.readSlice(length: count) else { return nil }  // count ≤ readable: always a slice
                let frameDone = count == remaining
                let event: Event
                if let mask, self.configuration.keepsMasked, !self.readsPayload {
                    event = .maskedPayload(slice, mask: mask, offset: offset)
                } else {
                    if let mask {
                        slice.withUnsafeMutableReadableBytesInPlace { mask.apply(to: $0, offset: offset) }
                    }
                    do {
                        try self.validatePayload(slice, endsMessage: frameDone && fin)
                    } catch {
                        self.state = .failed
                        throw error
                    }
                    event = .payload(slice)
                }
                if frameDone {
                    self.state = .header
                    if fin { self.message = .none }
                } else {
                    self.state = .dataPayload(remaining: remaining - count, mask: mask, offset: offset + count, fin: fin)
                }
                return event
            case .controlPayload(let opcode, let remaining, let mask):
                guard buffer.readableBytes > 0 else { return nil }
                let count = min(remaining, buffer.readableBytes)
                guard var slice = buffer.readSlice(length: count) else { return nil }  // count ≤ readable: always a slice
                if self.controlPayload == nil { self.controlPayload = ByteBuffer() }
                self.controlPayload?.writeBuffer(&slice)
                if count < remaining {
                    self.state = .controlPayload(opcode: opcode, remaining: remaining - count, mask: mask)
                    return nil
                }
                do {
                    return try self.finishControl(opcode: opcode, mask: mask)
                } catch {
                    self.state = .failed
                    throw error
                }
            }
        }
    }

    // MARK: - Header

    private struct Header {
        var fin: Bool
        var reserved: UInt8
        var opcode: UInt8
        var mask: WebSocketMask?
        var length: UInt64
    }

    private static func headerLength(first two: (UInt8, UInt8)) -> Int {
        let masked = two.1 & 0x80 != 0
        let base: Int
        switch two.1 & 0x7F {
        case 126: base = 4
        case 127: base = 10
        default: base = 2
        }
        return masked ? base + 4 : base
    }

    private static func parseHeader(_ bytes: UnsafeRawBufferPointer) -> Header {
        let b0 = bytes[0], b1 = bytes[1]
        var index = 2
        var length = UInt64(b1 & 0x7F)
        if length == 126 {
            length = UInt64(bytes[2]) << 8 | UInt64(bytes[3])
            index = 4
        } else if length == 127 {
            length = 0
            for i in 2..<10 { length = length << 8 | UInt64(bytes[i]) }
            index = 10
        }
        var mask: WebSocketMask?
        if b1 & 0x80 != 0 {
            mask = WebSocketMask(bytes[index], bytes[index + 1], bytes[index + 2], bytes[index + 3])
        }
        return Header(fin: b0 & 0x80 != 0, reserved: (b0 >> 4) & 0x7, opcode: b0 & 0x0F, mask: mask, length: length)
    }

    private mutating func readHeader(from buffer: inout ByteBuffer) -> Header? {
        if self.partialHeader.isEmpty {
            let parsed: (Header, Int)? = buffer.withUnsafeReadableBytes { bytes in
                guard bytes.count >= 2 else { return nil }
                let length = Self.headerLength(first: (bytes[0], bytes[1]))
                guard bytes.count >= length else { return nil }
                return (Self.parseHeader(UnsafeRawBufferPointer(rebasing: bytes[0..<length])), length)
            }
            if let (header, length) = parsed {
                buffer.moveReaderIndex(forwardBy: length)
                return header
            }
            self.partialHeader.append(contentsOf: buffer.readableBytesView)
            buffer.moveReaderIndex(to: buffer.writerIndex)
            return nil
        }
        // Complete a header that began in an earlier read, byte by byte (it is at most 14 bytes).
        while let byte: UInt8 = buffer.readInteger() {
            self.partialHeader.append(byte)
            if self.partialHeader.count >= 2,
               self.partialHeader.count == Self.headerLength(first: (self.partialHeader[0], self.partialHeader[1])) {
                let header = self.partialHeader.withUnsafeBytes { Self.parseHeader($0) }
                self.partialHeader.removeAll(keepingCapacity: true)
                return header
            }
        }
        return nil
    }

    /// Validates a frame header and moves to its payload. Returns the event to report, if any.
    private mutating func begin(_ header: Header) throws(WebSocketProtocolError) -> Event? {
        let rsv1 = header.reserved & 0x4 != 0
        if header.reserved & 0x3 != 0 || (rsv1 && !self.configuration.allowsCompression) {
            throw WebSocketProtocolError(.protocolError, "reserved bits set without a negotiated extension")
        }
        guard let opcode = WebSocketOpcode(rawValue: header.opcode) else {
            throw WebSocketProtocolError(.protocolError, "unknown opcode \(header.opcode)")
        }
        if rsv1 && (opcode.isControl || opcode == .continuation) {
            throw WebSocketProtocolError(.protocolError, "RSV1 set on a \(opcode.isControl ? "control" : "continuation") frame")
        }
        switch (self.role, header.mask) {
        case (.server, nil): throw WebSocketProtocolError(.protocolError, "client frame is not masked")
        case (.client, .some): throw WebSocketProtocolError(.protocolError, "server frame is masked")
        default: break
        }
        if header.length > UInt64(Int64.max) {
            throw WebSocketProtocolError(.protocolError, "frame length has the most significant bit set")
        }
        let length = Int(header.length)

        if opcode.isControl {
            guard header.fin else { throw WebSocketProtocolError(.protocolError, "fragmented control frame") }
            guard length <= 125 else { throw WebSocketProtocolError(.protocolError, "control frame longer than 125 bytes") }
            if self.controlPayload == nil { self.controlPayload = ByteBuffer() }
            self.controlPayload?.clear()  // in place: the buffer is reused frame after frame
            if length == 0 {
                return try self.finishControl(opcode: opcode, mask: header.mask)
            }
            self.state = .controlPayload(opcode: opcode, remaining: length, mask: header.mask)
            return nil
        }

        switch (opcode, self.message) {
        case (.continuation, .none):
            throw WebSocketProtocolError(.protocolError, "continuation frame without a message to continue")
        case (.text, .text), (.text, .binary), (.binary, .text), (.binary, .binary):
            throw WebSocketProtocolError(.protocolError, "new data frame inside a fragmented message")
        case (.text, .none):
            self.message = .text
            self.messageBytes = 0
            self.utf8.reset()
            self.messageIsCompressed = rsv1
        case (.binary, .none):
            self.message = .binary
            self.messageBytes = 0
            self.messageIsCompressed = rsv1
        default:
            break
        }
        if length > self.configuration.maxFrameBytes {
            throw WebSocketProtocolError(.messageTooBig, "frame of \(length) bytes exceeds \(self.configuration.maxFrameBytes)")
        }
        if length > self.configuration.maxMessageBytes - self.messageBytes {
            throw WebSocketProtocolError(.messageTooBig, "message exceeds \(self.configuration.maxMessageBytes) bytes")
        }
        self.messageBytes += length

        if length == 0 {
            if header.fin && !self.messageIsCompressed {
                try self.validatePayload(ByteBuffer(), endsMessage: true)
                self.message = .none
            }
            self.state = .header
        } else {
            self.state = .dataPayload(remaining: length, mask: header.mask, offset: 0, fin: header.fin)
        }
        return .dataFrame(opcode: opcode, fin: header.fin, length: length)
    }

    /// Whether the current message's bytes must be seen in the clear here (UTF-8 validation).
    private var readsPayload: Bool {
        if self.messageIsCompressed { return true }
        guard self.configuration.validatesUTF8, case .text = self.message else { return false }
        return true
    }

    private mutating func validatePayload(_ payload: ByteBuffer, endsMessage: Bool) throws(WebSocketProtocolError) {
        guard self.configuration.validatesUTF8, !self.messageIsCompressed, case .text = self.message else { return }
        let valid = payload.withUnsafeReadableBytes { self.utf8.consume($0) }
        if !valid {
            throw WebSocketProtocolError(.invalidPayload, "text message is not valid UTF-8")
        }
        if endsMessage && !self.utf8.isComplete {
            throw WebSocketProtocolError(.invalidPayload, "text message ends inside a UTF-8 sequence")
        }
    }

    private mutating func finishControl(opcode: WebSocketOpcode, mask: WebSocketMask?) throws(WebSocketProtocolError) -> Event {
        self.state = .header
        var payload = self.controlPayload ?? ByteBuffer()
        self.controlPayload = nil
        if let mask { mask.apply(to: &payload, offset: 0) }
        switch opcode {
        case .ping: return .ping(payload)
        case .pong: return .pong(payload)
        case .close: return try Self.decodeClose(payload)
        default: throw WebSocketProtocolError(.protocolError, "opcode \(opcode) is not a control opcode")  // not reached: begin() checked it
        }
    }

    static func decodeClose(_ payload: ByteBuffer) throws(WebSocketProtocolError) -> Event {
        var payload = payload
        if payload.readableBytes == 0 { return .close(code: nil, reason: "") }
        guard let raw: UInt16 = payload.readInteger() else {
            throw WebSocketProtocolError(.protocolError, "close frame with a 1-byte payload")
        }
        let code = WebSocketCloseCode(raw)
        guard code.isValidOnTheWire else {
            throw WebSocketProtocolError(.protocolError, "close frame with invalid code \(raw)")
        }
        let reasonBytes = payload.readableBytesView
        guard UTF8Validator.isValid(reasonBytes) else {
            throw WebSocketProtocolError(.invalidPayload, "close reason is not valid UTF-8")
        }
        return .close(code: code, reason: String(decoding: reasonBytes, as: UTF8.self))
    }
}
