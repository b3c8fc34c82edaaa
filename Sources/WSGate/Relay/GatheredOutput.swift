import NIOCore

/// Small writes of one read batch (frame headers, short payloads, control frames) gathered into one
/// buffer: one allocation and one write per batch instead of one or two per frame. Taken (and so
/// dropped) at each flush, so an idle leg holds no buffer.
struct GatheredOutput {
    /// Payloads up to this size are copied in; larger ones go out as the slices they arrived in,
    /// after what was gathered so far.
    static let copyLimit = 1024

    private var buffer: ByteBuffer?

    /// Appends through `body`, allocating room for at least `bytes` when nothing is gathered yet.
    @discardableResult
    mutating func append<T>(reserving bytes: Int, _ body: (inout ByteBuffer) -> T) -> T {
        // Every channel here uses NIO's default (malloc) allocator; asking the channel for it costs
        // a retain and a lock per frame.
        if self.buffer == nil { self.buffer = ByteBufferAllocator().buffer(capacity: max(bytes, 256)) }
        // Set on the line above, so never nil; unwrapped in place, it is written without a copy and
        // without moving the buffer out and back per frame.
        return body(&self.buffer!)
    }

    /// What was gathered, if anything; the gatherer is empty afterwards.
    mutating func take() -> ByteBuffer? {
        defer { self.buffer = nil }
        guard let buffer = self.buffer, buffer.readableBytes > 0 else { return nil }
        return buffer
    }
}
