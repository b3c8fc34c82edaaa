import NIOCore

/// Serializes frame headers and small control frames. Payloads are never copied into the header:
/// the relay writes the header buffer, then the payload slice, and flushes once per read batch.
public enum FrameEncoder {
    /// Bytes of header a frame with this payload length needs (2, 4 or 10, plus 4 with a mask).
    @inlinable
    public static func headerSize(payloadLength: Int, masked: Bool) -> Int {
        let base: Int
        if payloadLength < 126 {
            base = 2
        } else if payloadLength <= Int(UInt16.max) {
            base = 4
        } else {
            base = 10
        }
        return masked ? base + 4 : base
    }

    /// Stored byte by byte through one pointer: `writeInteger` per field costs a bounds and
    /// capacity check each, which shows at small-message rates.
    @inlinable
    public static func writeHeader(
        into buffer: inout ByteBuffer,
        fin: Bool,
        opcode: WebSocketOpcode,
        payloadLength: Int,
        mask: WebSocketMask?,
        compressed: Bool = false
    ) {
        let size = self.headerSize(payloadLength: payloadLength, masked: mask != nil)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { bytes in
            guard let out = bytes.baseAddress else { return 0 }  // never: at least `size` bytes were asked for
            out.storeBytes(of: (fin ? 0x80 : 0) | (compressed ? 0x40 : 0) | opcode.rawValue, as: UInt8.self)
            let maskBit: UInt8 = mask == nil ? 0 : 0x80
            var at: Int
            if payloadLength < 126 {
                out.storeBytes(of: maskBit | UInt8(payloadLength), toByteOffset: 1, as: UInt8.self)
                at = 2
            } else if payloadLength <= Int(UInt16.max) {
                out.storeBytes(of: maskBit | 126, toByteOffset: 1, as: UInt8.self)
                out.storeBytes(of: UInt16(payloadLength).bigEndian, toByteOffset: 2, as: UInt16.self)
                at = 4
            } else {
                out.storeBytes(of: maskBit | 127, toByteOffset: 1, as: UInt8.self)
                out.storeBytes(of: UInt64(payloadLength).bigEndian, toByteOffset: 2, as: UInt64.self)
                at = 10
            }
            if let mask {
                out.storeBytes(of: mask.key.0, toByteOffset: at, as: UInt8.self)
                out.storeBytes(of: mask.key.1, toByteOffset: at + 1, as: UInt8.self)
                out.storeBytes(of: mask.key.2, toByteOffset: at + 2, as: UInt8.self)
                out.storeBytes(of: mask.key.3, toByteOffset: at + 3, as: UInt8.self)
                at += 4
            }
            return at
        }
    }

    /// A complete control frame (ping, pong, close); `payload` must be at most 125 bytes.
    public static func controlFrame(
        opcode: WebSocketOpcode,
        payload: ByteBuffer,
        mask: WebSocketMask?,
        allocator: ByteBufferAllocator
    ) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 6 + payload.readableBytes)
        self.writeControlFrame(into: &buffer, opcode: opcode, payload: payload, mask: mask)
        return buffer
    }

    /// Appends a control frame to `buffer`, masking the payload there (one copy, no extra buffer).
    public static func writeControlFrame(into buffer: inout ByteBuffer, opcode: WebSocketOpcode, payload: ByteBuffer, mask: WebSocketMask?) {
        // At most 125 bytes (RFC 6455 §5.5): every caller passes a peer's control payload (checked by the
        // decoder) or a close payload (truncated by closePayload); cut here rather than trap if not.
        let payload = payload.getSlice(at: payload.readerIndex, length: min(payload.readableBytes, 125)) ?? ByteBuffer()
        self.writeHeader(into: &buffer, fin: true, opcode: opcode, payloadLength: payload.readableBytes, mask: mask)
        let start = buffer.writerIndex - buffer.readerIndex
        buffer.writeImmutableBuffer(payload)
        if let mask {
            let count = payload.readableBytes
            buffer.withUnsafeMutableReadableBytes { mask.apply(to: UnsafeMutableRawBufferPointer(rebasing: $0[start..<(start + count)]), offset: 0) }
        }
    }

    /// A close frame; `code == nil` sends an empty payload (the peer will see 1005, no status).
    public static func closeFrame(
        code: WebSocketCloseCode?,
        reason: String,
        mask: WebSocketMask?,
        allocator: ByteBufferAllocator
    ) -> ByteBuffer {
        self.controlFrame(opcode: .close, payload: self.closePayload(code: code, reason: reason), mask: mask, allocator: allocator)
    }

    /// The payload of a close frame. The reason is cut to fit the 123 bytes a close frame leaves
    /// for it, on a character boundary.
    public static func closePayload(code: WebSocketCloseCode?, reason: String) -> ByteBuffer {
        var payload = ByteBuffer()
        if let code, code.isValidOnTheWire {
            payload.reserveCapacity(2 + min(reason.utf8.count, 123))
            payload.writeInteger(code.rawValue)
            payload.writeSubstring(Self.truncated(reason, toBytes: 123))
        }
        return payload
    }

    static func truncated(_ text: String, toBytes limit: Int) -> Substring {
        if text.utf8.count <= limit { return Substring(text) }
        var end = text.startIndex
        var used = 0
        for index in text.indices {
            let width = text[index].utf8.count
            if used + width > limit { break }
            used += width
            end = text.index(after: index)
        }
        return text[..<end]
    }
}
