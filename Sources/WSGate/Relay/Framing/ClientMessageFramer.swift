import NIOCore

/// Marks where each client message ends in the bytes written to a framed service: a line ending
/// after messages that lack one (`lines`), a length before each message (`length_prefixed`).
/// Payload streams through; only a fragmented message on a length-prefixed route, whose length
/// is not known until its last frame, is held, up to the limit.
struct ClientMessageFramer {
    enum Failure: Error, Equatable {
        case messageTooLong(limit: Int)
    }

    let framing: TCPFraming
    /// Length-prefixed: the longest message (the prefix's maximum at most).
    let limit: Int
    private var frameRemaining = 0
    private var frameEndsMessage = false
    private var lastByte: UInt8?
    /// Length-prefixed, fragmented message: held until its last frame.
    private var held: ByteBuffer?
    /// Lines: the ending, made once (each write shares its storage).
    private let lineEnding: ByteBuffer
    /// Length-prefixed: reused for every prefix (the writer copies such small buffers out).
    private var prefixBuffer = ByteBuffer()

    init(_ framing: TCPFraming, maxMessageBytes: Int) {
        self.framing = framing
        if case .lengthPrefixed(let prefix) = framing {
            self.limit = min(prefix.maxMessageBytes ?? maxMessageBytes, prefix.kind.maximum)
        } else {
            self.limit = maxMessageBytes
        }
        if case .lines(let lines) = framing {
            self.lineEnding = ByteBuffer(bytes: lines.lineEnding.bytes)
        } else {
            self.lineEnding = ByteBuffer()
        }
    }

    mutating func frame(opcode: WebSocketOpcode, fin: Bool, length: Int, write: (ByteBuffer) -> Void) throws(Failure) {
        let starts = opcode != .continuation
        self.frameRemaining = length
        self.frameEndsMessage = fin
        switch self.framing {
        case .raw:
            return
        case .lines:
            if starts { self.lastByte = nil }
        case .lengthPrefixed(let prefix):
            if starts && fin {
                guard length <= self.limit else { throw .messageTooLong(limit: self.limit) }
                self.writePrefix(length, prefix.kind, write: write)
            } else if starts {
                self.held = ByteBufferAllocator().buffer(capacity: min(max(length, 256), self.limit))
            }
        }
        if length == 0 && fin { self.messageEnded(write: write) }
    }

    mutating func payload(_ payload: ByteBuffer, write: (ByteBuffer) -> Void) throws(Failure) {
        self.frameRemaining -= payload.readableBytes
        switch self.framing {
        case .raw:
            write(payload)
            return
        case .lines:
            write(payload)
            if payload.readableBytes > 0 { self.lastByte = payload.getInteger(at: payload.writerIndex - 1, as: UInt8.self) }
        case .lengthPrefixed:
            if let heldBytes = self.held?.readableBytes {
                guard heldBytes + payload.readableBytes <= self.limit else { throw .messageTooLong(limit: self.limit) }
                self.held?.writeImmutableBuffer(payload)
            } else {
                write(payload)
            }
        }
        if self.frameRemaining <= 0 && self.frameEndsMessage { self.messageEnded(write: write) }
    }

    private mutating func messageEnded(write: (ByteBuffer) -> Void) {
        switch self.framing {
        case .raw:
            break
        case .lines:
            if self.lastByte != 0x0A { write(self.lineEnding) }
            self.lastByte = nil
        case .lengthPrefixed(let prefix):
            guard let held = self.held else { return }
            self.held = nil
            self.writePrefix(held.readableBytes, prefix.kind, write: write)
            write(held)
        }
    }

    private mutating func writePrefix(_ length: Int, _ kind: LengthPrefix.Kind, write: (ByteBuffer) -> Void) {
        self.prefixBuffer.clear()
        RecordSplitter.encode(length, as: kind, into: &self.prefixBuffer)
        write(self.prefixBuffer)
    }
}
