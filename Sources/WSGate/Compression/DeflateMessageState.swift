import NIOCore

/// Where a compressed message from the peer is while it is inflated and relayed frame by frame:
/// which opcode the next relayed frame carries, when the message ends, whether inflating waits for
/// the other leg, and the limits on what comes out (size, UTF-8). The leg does the zlib and I/O.
struct InflatingMessage {
    enum State: Hashable {
        /// Between messages.
        case idle
        case inflating
        /// The other leg was full; the rest of the frame (or of the message tail) waits.
        case paused(inTail: Bool)
    }

    private(set) var state = State.idle
    private(set) var opcode = WebSocketOpcode.binary
    /// A frame of this message went to the other leg: the next one is a continuation.
    private var relayedAFrame = false
    private var frameRemaining = 0
    private var frameFin = false
    private var inflatedBytes = 0
    private var utf8 = UTF8Validator()
    let maxMessageBytes: Int
    /// Text is checked for UTF-8 as it comes out (from clients; backend text is the backend's business).
    let checksUTF8: Bool

    init(maxMessageBytes: Int, checksUTF8: Bool) {
        self.maxMessageBytes = maxMessageBytes
        self.checksUTF8 = checksUTF8
    }

    /// The opcode of the next frame relayed for this message.
    var frameOpcode: WebSocketOpcode { self.relayedAFrame ? .continuation : self.opcode }

    /// The payload of the current frame is all in and it is the message's last frame.
    var messageComplete: Bool { self.frameRemaining == 0 && self.frameFin }

    var isPaused: Bool {
        if case .paused = self.state { return true }
        return false
    }

    /// A compressed data frame's header; a non-continuation frame starts a message. True: the
    /// message ends here (an empty final frame).
    mutating func frameStarted(opcode: WebSocketOpcode, fin: Bool, length: Int) -> Bool {
        if opcode != .continuation {
            self.state = .inflating
            self.opcode = opcode
            self.relayedAFrame = false
            self.inflatedBytes = 0
            self.utf8.reset()
        }
        self.frameRemaining = length
        self.frameFin = fin
        return self.messageComplete
    }

    /// Compressed payload of the current frame arrived (it is inflated next).
    mutating func payloadArrived(_ count: Int) {
        self.frameRemaining -= count
    }

    /// Inflated bytes about to be relayed: counted against the message limit (a zip bomb ends there
    /// with 1009) and checked as UTF-8 for text. Returns the opcode of the frame that carries them.
    mutating func inflated(_ output: ByteBuffer) throws(WebSocketProtocolError) -> WebSocketOpcode {
        self.inflatedBytes += output.readableBytes
        if self.inflatedBytes > self.maxMessageBytes {
            throw WebSocketProtocolError(.messageTooBig, "decompressed message exceeds \(self.maxMessageBytes) bytes")
        }
        if self.opcode == .text, self.checksUTF8, !output.withUnsafeReadableBytes({ self.utf8.consume($0) }) {
            throw WebSocketProtocolError(.invalidPayload, "text message is not valid UTF-8")
        }
        let opcode = self.frameOpcode
        self.relayedAFrame = true
        return opcode
    }

    mutating func pause(inTail: Bool) {
        self.state = .paused(inTail: inTail)
    }

    /// The other leg drained: whether what waits is the message tail; nil when nothing waits.
    mutating func resume() -> Bool? {
        guard case .paused(let inTail) = self.state else { return nil }
        self.state = .inflating
        return inTail
    }

    /// The whole message is inflated: returns the opcode of the empty final frame that ends it.
    mutating func finish() throws(WebSocketProtocolError) -> WebSocketOpcode {
        if self.opcode == .text, self.checksUTF8, !self.utf8.isComplete {
            throw WebSocketProtocolError(.invalidPayload, "text message ends inside a UTF-8 sequence")
        }
        let opcode = self.frameOpcode
        self.state = .idle
        return opcode
    }
}

/// Where a message to the peer is while it is compressed: whether it is compressed at all
/// (single-frame messages under `min_size` go as they are), and which opcode and RSV1 bit its next
/// frame carries. The leg does the zlib and I/O.
struct DeflatingMessage {
    enum State: Hashable {
        /// Before the first message, or after a compressed one ended.
        case idle
        /// The current message goes as it is.
        case passing
        /// The current message is compressed; `sentAFrame`: its first frame (with RSV1) is out.
        case compressing(sentAFrame: Bool)
    }

    enum FrameAction: Equatable {
        /// Relay the frame as it is.
        case passThrough
        /// Compress the frame's payload as it comes.
        case compress
        /// An empty final frame: end the compressed message now.
        case finish
    }

    private(set) var state = State.idle
    private(set) var opcode = WebSocketOpcode.binary
    private var frameRemaining = 0
    private var frameFin = false
    let minimumMessageBytes: Int

    init(minimumMessageBytes: Int) {
        self.minimumMessageBytes = minimumMessageBytes
    }

    var isCompressing: Bool {
        if case .compressing = self.state { return true }
        return false
    }

    /// A data frame's header from the other leg; a non-continuation frame starts a message.
    mutating func frameStarted(opcode: WebSocketOpcode, fin: Bool, length: Int) -> FrameAction {
        if opcode != .continuation {
            // Size known only for single-frame messages; fragmented ones are compressed.
            let compresses = !fin || length >= self.minimumMessageBytes
            self.state = compresses ? .compressing(sentAFrame: false) : .passing
            self.opcode = opcode
        }
        guard self.isCompressing else { return .passThrough }
        self.frameRemaining = length
        self.frameFin = fin
        return length == 0 && fin ? .finish : .compress
    }

    /// Payload of the current frame was compressed; true: the message ends with it.
    mutating func payloadCompressed(_ count: Int) -> Bool {
        self.frameRemaining -= count
        return self.frameRemaining == 0 && self.frameFin
    }

    /// The opcode and RSV1 of the next frame written for the compressed message.
    mutating func nextFrame() -> (opcode: WebSocketOpcode, compressed: Bool) {
        guard case .compressing(let sent) = self.state else { return (.continuation, false) }
        self.state = .compressing(sentAFrame: true)
        return sent ? (.continuation, false) : (self.opcode, true)
    }

    /// The compressed message's last frame is written.
    mutating func finished() {
        self.state = .idle
    }
}
