import NIOCore
import Testing
@testable import WSGate

@Suite struct MessageCompressionTests {
    /// Inflates a whole message (payload then tail) in output chunks of at most `chunk` bytes.
    func inflate(_ inflater: MessageInflater, _ compressed: ByteBuffer, chunk: Int = 1024) throws -> [UInt8] {
        var result: [UInt8] = []
        try inflater.inflate(compressed, endsMessage: true, chunkSize: chunk) { output in
            #expect(output.readableBytes <= chunk)
            result += output.readableBytesView
        }
        return result
    }

    @Test(arguments: [false, true])
    func messagesRoundTripWithAndWithoutContextTakeover(noContextTakeover: Bool) throws {
        let deflater = MessageDeflater(windowBits: 15, level: 6, memoryLevel: 8, resetsEachMessage: noContextTakeover)
        let inflater = MessageInflater(windowBits: 15, resetsEachMessage: noContextTakeover)
        let message = Array(String(repeating: "{\"temperature\":21.5,\"unit\":\"C\"} ", count: 300).utf8)
        for _ in 0..<3 {
            var compressed = ByteBuffer()
            for start in stride(from: 0, to: message.count, by: 777) {  // fed in slices, as frames stream
                var slice = ByteBuffer(bytes: message[start..<min(message.count, start + 777)])
                try deflater.deflate(&slice, into: &compressed)
            }
            try deflater.finishMessage(into: &compressed)
            #expect(compressed.readableBytes < message.count / 10)
            #expect(try inflate(inflater, compressed) == message)
        }
    }

    @Test func emptyMessageCompressesAndInflates() throws {
        let deflater = MessageDeflater(windowBits: 15, level: 6, memoryLevel: 8, resetsEachMessage: false)
        var compressed = ByteBuffer()
        try deflater.finishMessage(into: &compressed)
        #expect(try inflate(MessageInflater(windowBits: 15, resetsEachMessage: false), compressed).isEmpty)
    }

    /// 16 MiB of zeros compress to ~16 KiB; inflating hands it out in bounded chunks, so the caller
    /// can stop at its message limit without the whole thing ever existing in memory.
    @Test func inflateOutputIsBoundedByTheCaller() throws {
        let deflater = MessageDeflater(windowBits: 15, level: 9, memoryLevel: 8, resetsEachMessage: false)
        var compressed = ByteBuffer()
        var zeros = ByteBuffer(repeating: 0, count: 1 << 20)
        for _ in 0..<16 {
            var chunk = zeros
            try deflater.deflate(&chunk, into: &compressed)
        }
        zeros.clear()
        try deflater.finishMessage(into: &compressed)
        #expect(compressed.readableBytes < 64 * 1024)
        let inflater = MessageInflater(windowBits: 15, resetsEachMessage: false)
        var input = compressed
        var output = ByteBuffer()
        output.reserveCapacity(64 * 1024)
        let room = output.writableBytes
        let done = try inflater.inflate(&input, into: &output)
        #expect(!done)  // stopped with input left: the output chunk is full
        #expect(output.readableBytes == room)
        #expect(input.readableBytes > 0)
    }
}

@Suite(.timeLimit(.minutes(1))) struct MessageInflaterEdgeTests {
    /// Output chunks far smaller than the back-references in the data: zlib stops in the middle of a
    /// copy whenever a chunk fills, also right as the input runs out; nothing may be lost or moved
    /// into the next message.
    @Test(arguments: [1, 7, 16, 64])
    func tinyOutputChunksLoseNothing(chunk: Int) throws {
        let deflater = MessageDeflater(windowBits: 15, level: 9, memoryLevel: 8, resetsEachMessage: false)
        let inflater = MessageInflater(windowBits: 15, resetsEachMessage: false)
        for round in 0..<3 {
            let message = Array(String(repeating: "abcdefgh-\(round)-", count: 500).utf8)
            var input = ByteBuffer(bytes: message)
            var compressed = ByteBuffer()
            try deflater.deflate(&input, into: &compressed)
            try deflater.finishMessage(into: &compressed)
            var received: [UInt8] = []
            try inflater.inflate(compressed, endsMessage: true, chunkSize: chunk) { received += $0.readableBytesView }
            #expect(received == message, "round \(round)")
        }
    }

    /// A sender that ends a message with a final (BFINAL) block leaves zlib's stream finished; what
    /// follows must fail rather than spin forever on input zlib will not take.
    @Test func inputAfterTheEndOfTheDeflateStreamFailsInsteadOfSpinning() throws {
        // One stored block with BFINAL set: "hello", then the stream is over.
        let finished = ByteBuffer(bytes: [0x01, 0x05, 0x00, 0xFA, 0xFF] + Array("hello".utf8))
        let inflater = MessageInflater(windowBits: 15, resetsEachMessage: false)
        #expect(throws: (any Error).self) {
            try inflater.inflate(finished, endsMessage: true, chunkSize: 1024) { _ in }
        }
    }
}
