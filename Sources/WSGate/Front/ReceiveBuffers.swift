import NIOCore

/// How big a buffer each socket read gets. NIO keeps each channel's last receive buffer for reuse,
/// so the starting size is memory every idle connection holds: start at 512 bytes (a handshake fits
/// in a read or two) and double after every read that fills the buffer, up to 64 KiB, halving again
/// after two reads that used less than half of it — NIO's adaptive policy.
///
/// Two bytes of state, so the channel stores it inline: NIO's `AdaptiveRecvByteBufferAllocator` is
/// too big for an existential's inline buffer and costs two boxed copies per channel.
struct ReceiveBuffers: RecvByteBufferAllocator {
    private static let smallestShift: UInt8 = 6  // 64 bytes
    private static let initialShift: UInt8 = 9  // 512 bytes
    private static let largestShift: UInt8 = 16  // 64 KiB

    private var shift = Self.initialShift
    private var shrinkAfterNextSmallRead = false

    func buffer(allocator: ByteBufferAllocator) -> ByteBuffer {
        allocator.buffer(capacity: 1 << Int(self.shift))
    }

    func nextBufferSize() -> Int? {
        1 << Int(self.shift)
    }

    mutating func record(actualReadBytes: Int) -> Bool {
        let size = 1 << Int(self.shift)
        if actualReadBytes <= size / 2 && self.shift > Self.smallestShift {
            if self.shrinkAfterNextSmallRead {
                self.shift -= 1
                self.shrinkAfterNextSmallRead = false
            } else {
                self.shrinkAfterNextSmallRead = true
            }
            return false
        }
        self.shrinkAfterNextSmallRead = false
        if actualReadBytes >= size && self.shift < Self.largestShift {
            self.shift += 1
            return true
        }
        return false
    }
}
