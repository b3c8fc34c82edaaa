#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Fresh, unpredictable masking keys (RFC 6455 §5.3 wants a strong entropy source) without a system
/// draw per frame: keys are drawn in batches of 256 (two per 64-bit draw).
struct MaskKeySource {
    private var keys = [UInt32](repeating: 0, count: 256)
    private var next = 256

    mutating func nextMask() -> WebSocketMask {
        if self.next == self.keys.count {
            self.keys.withUnsafeMutableBytes { Self.fillRandom($0) }
            self.next = 0
        }
        let bits = self.keys[self.next]
        self.next += 1
        return WebSocketMask(UInt8(truncatingIfNeeded: bits), UInt8(truncatingIfNeeded: bits >> 8),
                             UInt8(truncatingIfNeeded: bits >> 16), UInt8(truncatingIfNeeded: bits >> 24))
    }

    private static func fillRandom(_ bytes: UnsafeMutableRawBufferPointer) {
        // 8 bytes per draw from the kernel-backed system generator.
        var generator = SystemRandomNumberGenerator()
        var offset = 0
        while offset + 8 <= bytes.count {
            bytes.storeBytes(of: generator.next(), toByteOffset: offset, as: UInt64.self)
            offset += 8
        }
    }
}
