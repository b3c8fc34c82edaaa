#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOPosix

/// Fresh, unpredictable masking keys (RFC 6455 §5.3 wants a strong entropy source) without a kernel
/// call per frame and without memory per connection: each thread draws keys from its own batch of
/// 256, refilled with one `arc4random_buf` call (the kernel-seeded ChaCha generator of glibc ≥ 2.36
/// and Darwin).
enum MaskKeys {
    private final class Batch {
        var keys = [UInt64](repeating: 0, count: 128)
        var next = 256

        func nextMask() -> WebSocketMask {
            if self.next == 256 {
                // Filled outside `keys` and then stored: a C call inside an access to `keys` would
                // make the compiler check every access to it at run time (it cannot see into C).
                var fresh = [UInt64](repeating: 0, count: 128)
                fresh.withUnsafeMutableBytes { bytes in
                    if let base = bytes.baseAddress { arc4random_buf(base, bytes.count) }
                }
                self.keys = fresh
                self.next = 0
            }
            let word = self.keys[self.next >> 1]
            let bits = UInt32(truncatingIfNeeded: self.next & 1 == 0 ? word : word >> 32)
            self.next += 1
            return WebSocketMask(UInt8(truncatingIfNeeded: bits), UInt8(truncatingIfNeeded: bits >> 8),
                                 UInt8(truncatingIfNeeded: bits >> 16), UInt8(truncatingIfNeeded: bits >> 24))
        }
    }

    /// Thread-local: each thread draws from its own batch, so nothing is shared.
    nonisolated(unsafe) private static let batch = ThreadSpecificVariable<Batch>()

    static func next() -> WebSocketMask {
        if let batch = self.batch.currentValue { return batch.nextMask() }
        let batch = Batch()
        self.batch.currentValue = batch
        return batch.nextMask()
    }
}
