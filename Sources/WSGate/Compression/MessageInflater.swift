import CompressNIO
import NIOCore

/// Decompresses the client's permessage-deflate messages (RFC 7692 §7.2.2) a slice at a time into
/// bounded output chunks, so a message is never held whole and a small compressed message cannot
/// make the gateway produce more than the caller lets it.
public final class MessageInflater {
    /// The four bytes RFC 7692 has senders strip from the end of each message.
    private static let tail: [UInt8] = [0x00, 0x00, 0xFF, 0xFF]

    private let windowBits: Int32
    private let resetsEachMessage: Bool
    private var zlib: ZlibDecompressor?

    /// `windowBits`: the client's negotiated window; `resetsEachMessage`: client_no_context_takeover,
    /// so no history is kept (and no memory held) between messages.
    public init(windowBits: Int, resetsEachMessage: Bool) {
        // zlib's raw inflate wants at least 9 bits; a bigger window than the sender's is always fine.
        self.windowBits = Int32(max(9, windowBits))
        self.resetsEachMessage = resetsEachMessage
    }

    /// Inflates from `input` into `output`. True: `input` is used up and zlib has nothing more to give
    /// for it. False: `output` filled up — call again with room, even with `input` empty, since zlib
    /// may be in the middle of a back-reference. Throws on corrupt data, including input zlib will
    /// not take (anything after a final deflate block).
    public func inflate(_ input: inout ByteBuffer, into output: inout ByteBuffer) throws -> Bool {
        let zlib = try self.stream()
        while true {
            guard output.writableBytes > 0 else { return false }
            let (inputBefore, outputBefore) = (input.readableBytes, output.readableBytes)
            do {
                try zlib.inflate(from: &input, to: &output)
            } catch let error as CompressNIOError where error == .bufferOverflow {
                return false
            } catch let error as CompressNIOError where error == .inputBufferOverflow {
                return true
            }
            if input.readableBytes == 0 { return true }
            if input.readableBytes == inputBefore && output.readableBytes == outputBefore { throw CompressNIOError.corruptData }
        }
    }

    /// Inflates all of `input` — and, with `endsMessage`, the message tail — handing the output to
    /// `body` in chunks of at most `chunkSize` bytes (rounded up to a power of two, as ByteBuffer
    /// allocates). Only for callers that take everything at once;
    /// the relay uses ``inflate(_:into:)`` so it can stop while the other side is full.
    public func inflate(_ input: ByteBuffer, endsMessage: Bool, chunkSize: Int, _ body: (ByteBuffer) throws -> Void) throws {
        for var part in endsMessage ? [input, self.messageTail()] : [input] {
            while true {
                var output = ByteBufferAllocator().buffer(capacity: chunkSize)
                let done = try self.inflate(&part, into: &output)
                if output.readableBytes > 0 { try body(output) }
                if done { break }
            }
        }
        if endsMessage { self.messageFinished() }
    }

    /// The end-of-message tail to feed through ``inflate(_:into:)`` after the last frame's payload.
    public func messageTail() -> ByteBuffer {
        ByteBuffer(bytes: Self.tail)
    }

    /// After the tail went through: forget the history when the client does not keep its own.
    public func messageFinished() {
        if self.resetsEachMessage { self.zlib = nil }
    }

    private func stream() throws -> ZlibDecompressor {
        if let zlib { return zlib }
        let zlib = try ZlibDecompressor(algorithm: .deflate, windowSize: self.windowBits)
        self.zlib = zlib
        return zlib
    }
}

/// Compresses messages to the client a slice at a time (RFC 7692 §7.2.1): output comes out as it
/// is produced, and a message ends with a sync flush whose `00 00 FF FF` tail is stripped.
public final class MessageDeflater {
    private let configuration: ZlibConfiguration
    private let resetsEachMessage: Bool
    private var zlib: ZlibCompressor?

    public init(windowBits: Int, level: Int, memoryLevel: Int, resetsEachMessage: Bool) {
        self.configuration = ZlibConfiguration(windowSize: Int32(windowBits), compressionLevel: Int32(level), memoryLevel: Int32(memoryLevel))
        self.resetsEachMessage = resetsEachMessage
    }

    /// Compresses all of `input`, appending to `output` (grown as needed; deflate keeps its own
    /// bounded internal buffer, so output stays near what it has produced so far).
    public func deflate(_ input: inout ByteBuffer, into output: inout ByteBuffer) throws {
        let zlib = try self.stream()
        while input.readableBytes > 0 {
            output.reserveCapacity(minimumWritableBytes: max(256, input.readableBytes / 2))
            do {
                try zlib.deflate(from: &input, to: &output, flush: .no)
            } catch let error as CompressNIOError where error == .bufferOverflow {
                continue  // no room to progress: the loop makes room
            }
        }
    }

    /// Ends a message: flushes everything pending into `output`, without the sync-flush tail.
    public func finishMessage(into output: inout ByteBuffer) throws {
        let zlib = try self.stream()
        var empty = ByteBuffer()
        while true {
            output.reserveCapacity(minimumWritableBytes: 1024)
            let before = output.writerIndex
            do {
                try zlib.deflate(from: &empty, to: &output, flush: .sync)
            } catch let error as CompressNIOError where error == .bufferOverflow {
                if output.writerIndex == before { break }  // nothing left to flush
                continue
            }
            // A sync flush that fit ends with its empty stored block: 00 00 FF FF.
            if output.writableBytes > 0 { break }
        }
        // A sync flush always ends with its empty stored block; zlib not doing so is its failure, not ours to trap on.
        guard output.readableBytes >= 4 else { throw CompressionFailure(description: "zlib's sync flush ended without its empty stored block") }
        output.moveWriterIndex(to: output.writerIndex - 4)
        if self.resetsEachMessage { self.zlib = nil }
    }

    private func stream() throws -> ZlibCompressor {
        if let zlib { return zlib }
        let zlib = try ZlibCompressor(algorithm: .deflate, configuration: self.configuration)
        self.zlib = zlib
        return zlib
    }
}

/// zlib did something its contract rules out.
struct CompressionFailure: Error, CustomStringConvertible {
    var description: String
}
