import NIOCore

extension Optional where Wrapped == ByteBuffer {
    /// What was held with `incoming` after it, leaving nothing held: the held buffer has one
    /// reference while it grows, so the append writes in place. The caller stores back what it keeps.
    mutating func takeAppending(_ incoming: ByteBuffer) -> ByteBuffer {
        guard var held = self else { return incoming }
        self = nil
        var incoming = incoming
        held.writeBuffer(&incoming)
        return held
    }
}
