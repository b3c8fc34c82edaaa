import NIOCore

extension ByteBuffer {
    /// Mutates the readable bytes without copy-on-write.
    ///
    /// Only for payload bytes the relay owns outright: slices of a socket read that no other handler
    /// has seen, which the relay unmasks or masks just before handing them on. Going through
    /// `withUnsafeMutableReadableBytes` would copy every frame, because each slice shares the read's storage.
    @inlinable
    mutating func withUnsafeMutableReadableBytesInPlace<T>(_ body: (UnsafeMutableRawBufferPointer) throws -> T) rethrows -> T {
        try self.withUnsafeReadableBytes { try body(UnsafeMutableRawBufferPointer(mutating: $0)) }
    }
}
