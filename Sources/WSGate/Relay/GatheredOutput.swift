import NIOCore

/// Small writes of one read batch (frame headers, short payloads, control frames) gathered into one
/// buffer: one allocation and one write per batch instead of one or two per frame. Moved out (and so
/// dropped) at each flush, so an idle leg holds no buffer.
///
/// Appending is done on a local: the owner moves the gathered bytes out (``moveOut()``), makes them
/// appendable (``appendable(_:reserving:)``), appends, and moves them back (``moveBack(_:)``). So no
/// NIO call runs inside an access to the owner's property: one would make the compiler check every
/// access to that property at run time (several per frame), where now it proves them exclusive.
/// Each owner keeps its own five-line `gather` helper for that: one shared through a protocol
/// requirement reaches the property through an accessor call and the run-time checks came back.
struct GatheredOutput {
    /// Payloads up to this size are copied in; larger ones go out as the slices they arrived in,
    /// after what was gathered so far.
    static let copyLimit = 1024

    private var buffer: ByteBuffer?

    /// What was moved out, or a new buffer with room for at least `bytes` when nothing was gathered.
    static func appendable(_ moved: ByteBuffer?, reserving bytes: Int) -> ByteBuffer {
        // Every channel here uses NIO's default (malloc) allocator; asking the channel for it costs
        // a retain and a lock per frame.
        moved ?? ByteBufferAllocator().buffer(capacity: max(bytes, 256))
    }

    /// The gathered bytes, moved out: nothing is gathered afterwards (until ``moveBack(_:)``).
    /// An empty buffer is the caller's to drop, outside the access: releasing one may free it, a
    /// call the compiler cannot see into.
    mutating func moveOut() -> ByteBuffer? {
        defer { self.buffer = nil }
        return self.buffer
    }

    mutating func moveBack(_ buffer: ByteBuffer) {
        self.buffer = buffer
    }
}
