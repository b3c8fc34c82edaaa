import NIOCore

/// What one send pass of an HTTP/2 connection writes: the frames nghttp2 serialised, with each
/// stream's DATA payload placed as the buffers the backend's reads produced (nghttp2's NO_COPY
/// data source), so a large payload goes from the backend's read buffer to the socket (one gathered
/// write) without being copied into nghttp2 and out again. Small payloads are copied into the frame
/// bytes around them: below ``copyBelow`` a copy costs less than a buffer of its own.
struct HTTP2Output {
    static let copyBelow = 1024

    private var buffers: [ByteBuffer] = []
    /// Frame bytes (and small payloads) since the last buffer that went in whole; allocated on
    /// the first byte, so an empty output costs nothing.
    private var current: ByteBuffer?
    private let allocator: ByteBufferAllocator

    init(allocator: ByteBufferAllocator) {
        self.allocator = allocator
    }

    /// Serialised frame bytes (copied: nghttp2 reuses its memory on its next call).
    mutating func append(bytes: UnsafeRawBufferPointer) {
        self.withCurrent { $0.writeBytes(bytes) }
    }

    mutating func appendZeros(_ count: Int) {
        self.withCurrent { $0.writeRepeatingByte(0, count: count) }
    }

    /// A DATA payload's bytes, in order after whatever was appended before.
    mutating func append(payload: ByteBuffer) {
        if payload.readableBytes < Self.copyBelow {
            var payload = payload
            self.withCurrent { $0.writeBuffer(&payload) }
            return
        }
        if let current = self.current.take() { self.buffers.append(current) }
        self.buffers.append(payload)
    }

    /// Every buffer to write, in order.
    mutating func finish() -> [ByteBuffer] {
        if let current = self.current.take() { self.buffers.append(current) }
        let buffers = self.buffers
        self.buffers.removeAll()
        return buffers
    }

    private mutating func withCurrent(_ body: (inout ByteBuffer) -> Void) {
        var buffer = self.current.take() ?? self.allocator.buffer(capacity: 1024)
        body(&buffer)
        self.current = buffer
    }
}
