import NIOCore

/// A 4-byte masking key and the position within it, so a frame's payload can be (un)masked in chunks.
public struct WebSocketMask: Sendable, Equatable {
    public var key: (UInt8, UInt8, UInt8, UInt8)

    public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) { self.key = (a, b, c, d) }

    public init<G: RandomNumberGenerator>(using generator: inout G) {
        let bits = UInt32.random(in: .min ... .max, using: &generator)
        self.key = (UInt8(truncatingIfNeeded: bits), UInt8(truncatingIfNeeded: bits >> 8),
                    UInt8(truncatingIfNeeded: bits >> 16), UInt8(truncatingIfNeeded: bits >> 24))
    }

    public static func random() -> WebSocketMask {
        var rng = SystemRandomNumberGenerator()
        return WebSocketMask(using: &rng)
    }

    public static func == (lhs: WebSocketMask, rhs: WebSocketMask) -> Bool {
        lhs.key == rhs.key
    }

    /// The key that turns bytes masked with `self` into bytes masked with `other` (at the same
    /// payload offsets) in one pass.
    @inlinable
    public func combined(with other: WebSocketMask) -> WebSocketMask {
        WebSocketMask(self.key.0 ^ other.key.0, self.key.1 ^ other.key.1, self.key.2 ^ other.key.2, self.key.3 ^ other.key.3)
    }

    @inlinable
    subscript(index: Int) -> UInt8 {
        switch index & 3 {
        case 0: return self.key.0
        case 1: return self.key.1
        case 2: return self.key.2
        default: return self.key.3
        }
    }

    /// XORs `bytes` in place with the key, starting `offset` bytes into the frame payload.
    /// Works a machine word at a time: byte-at-a-time loops are the hot spot of naive relays.
    @inlinable
    public func apply(to bytes: UnsafeMutableRawBufferPointer, offset: Int) {
        let count = bytes.count
        guard count > 0, let base = bytes.baseAddress else { return }
        var index = 0
        // Align the key with the payload position, then spread it over 8 bytes.
        let rotation = offset & 3
        var word32: UInt32 = 0
        for i in 0..<4 {
            word32 |= UInt32(self[rotation + i]) << (8 * UInt32(i))
        }
        let word64 = (UInt64(word32) | (UInt64(word32) << 32)).littleEndianBytesSwappedIfNeeded
        // Four words per round: independent loads and stores the CPU can overlap.
        while index + 32 <= count {
            let a = base.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            let b = base.loadUnaligned(fromByteOffset: index + 8, as: UInt64.self)
            let c = base.loadUnaligned(fromByteOffset: index + 16, as: UInt64.self)
            let d = base.loadUnaligned(fromByteOffset: index + 24, as: UInt64.self)
            base.storeBytes(of: a ^ word64, toByteOffset: index, as: UInt64.self)
            base.storeBytes(of: b ^ word64, toByteOffset: index + 8, as: UInt64.self)
            base.storeBytes(of: c ^ word64, toByteOffset: index + 16, as: UInt64.self)
            base.storeBytes(of: d ^ word64, toByteOffset: index + 24, as: UInt64.self)
            index += 32
        }
        while index + 8 <= count {
            let value = base.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            base.storeBytes(of: value ^ word64, toByteOffset: index, as: UInt64.self)
            index += 8
        }
        while index < count {
            base.storeBytes(of: base.load(fromByteOffset: index, as: UInt8.self) ^ self[rotation + index], toByteOffset: index, as: UInt8.self)
            index += 1
        }
    }

    /// XORs the readable bytes of `buffer` in place (copying the storage only if it is shared).
    @inlinable
    public func apply(to buffer: inout ByteBuffer, offset: Int) {
        buffer.withUnsafeMutableReadableBytes { self.apply(to: $0, offset: offset) }
    }
}

extension UInt64 {
    /// The mask word is built little-endian (byte 0 in the low bits); on a big-endian host it must be swapped.
    @usableFromInline
    var littleEndianBytesSwappedIfNeeded: UInt64 { UInt64(littleEndian: self) }
}
