import NIOCore

/// Cuts the service's stream into length-prefixed records, streaming each record's bytes as they
/// come: only a partial prefix (at most 4 bytes) is ever held.
struct RecordSplitter {
    enum Event {
        /// A record of `length` bytes begins; its bytes follow as `bytes` events.
        case start(length: Int)
        case bytes(ByteBuffer)
    }

    enum Failure: Error, Equatable {
        case recordTooLong(length: Int, limit: Int)
    }

    let kind: LengthPrefix.Kind
    let limit: Int
    private var prefix: [UInt8] = []
    private var remaining = 0

    init(_ kind: LengthPrefix.Kind, limit: Int) {
        self.kind = kind
        self.limit = limit
        self.prefix.reserveCapacity(4)
    }

    /// Bytes of the current record still to come (0 between records).
    var inRecord: Int { self.remaining }

    mutating func receive(_ input: ByteBuffer, emit: (Event) -> Void) throws(Failure) {
        var input = input
        while input.readableBytes > 0 {
            if self.remaining > 0 {
                guard let piece = input.readSlice(length: min(self.remaining, input.readableBytes)) else { return }  // never: ≤ readable
                self.remaining -= piece.readableBytes
                emit(.bytes(piece))
                continue
            }
            guard let byte = input.readInteger(as: UInt8.self) else { return }  // never: the loop checked for a byte
            self.prefix.append(byte)
            guard self.prefix.count == self.kind.width else { continue }
            let length = self.decodedLength()
            self.prefix.removeAll(keepingCapacity: true)
            guard length <= self.limit else { throw .recordTooLong(length: length, limit: self.limit) }
            emit(.start(length: length))
            self.remaining = length
        }
    }

    private func decodedLength() -> Int {
        self.kind.isBigEndian ? self.prefix.reduce(0) { $0 << 8 | Int($1) } : self.prefix.reversed().reduce(0) { $0 << 8 | Int($1) }
    }

    /// The prefix for a record of `length` bytes.
    static func encode(_ length: Int, as kind: LengthPrefix.Kind, into buffer: inout ByteBuffer) {
        switch kind {
        case .u8: buffer.writeInteger(UInt8(length))
        case .u16be: buffer.writeInteger(UInt16(length), endianness: .big)
        case .u16le: buffer.writeInteger(UInt16(length), endianness: .little)
        case .u32be: buffer.writeInteger(UInt32(length), endianness: .big)
        case .u32le: buffer.writeInteger(UInt32(length), endianness: .little)
        }
    }
}
