/// Incremental UTF-8 validation, so a text message can be checked chunk by chunk as it streams
/// through, and rejected (1007) as soon as a bad byte arrives rather than at the end of the message.
///
/// This is Björn Höhrmann's DFA ("Flexible and Economical UTF-8 Decoder"): one table lookup per byte,
/// with states that remember a partial sequence across chunk boundaries.
public struct UTF8Validator: Sendable {
    @usableFromInline static let accept: UInt8 = 0
    @usableFromInline static let reject: UInt8 = 12

    @usableFromInline var state: UInt8 = UTF8Validator.accept

    public init() {}

    /// False once a byte sequence can no longer be valid UTF-8 whatever follows.
    @inlinable public var isValidSoFar: Bool { self.state != Self.reject }

    /// True when the bytes seen so far end on a character boundary.
    @inlinable public var isComplete: Bool { self.state == Self.accept }

    public mutating func reset() { self.state = Self.accept }

    /// Feeds bytes; returns false as soon as they are invalid.
    @inlinable
    @discardableResult
    public mutating func consume<Bytes: Sequence>(_ bytes: Bytes) -> Bool where Bytes.Element == UInt8 {
        var state = self.state
        if state == Self.reject { return false }
        for byte in bytes {
            let type = utf8CharacterClass[Int(byte)]
            state = utf8Transitions[Int(state) + Int(type)]
            if state == Self.reject { break }
        }
        self.state = state
        return state != Self.reject
    }

    /// Feeds raw memory; the fast path used on live payloads. ASCII runs are skipped eight bytes at a time.
    @inlinable
    @discardableResult
    public mutating func consume(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var state = self.state
        if state == Self.reject { return false }
        var index = 0
        let count = bytes.count
        while index < count {
            if state == Self.accept {
                while index + 8 <= count {
                    let word = bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self)
                    if word & 0x8080_8080_8080_8080 != 0 { break }
                    index += 8
                }
                if index >= count { break }
            }
            let type = utf8CharacterClass[Int(bytes[index])]
            state = utf8Transitions[Int(state) + Int(type)]
            if state == Self.reject { break }
            index += 1
        }
        self.state = state
        return state != Self.reject
    }
}

public extension UTF8Validator {
    /// Validates a complete byte sequence.
    static func isValid<Bytes: Sequence>(_ bytes: Bytes) -> Bool where Bytes.Element == UInt8 {
        var validator = UTF8Validator()
        return validator.consume(bytes) && validator.isComplete
    }
}

@usableFromInline
let utf8CharacterClass: [UInt8] = [
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9,
    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
    8, 8, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    10, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 4, 3, 3, 11, 6, 6, 6, 5, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8,
]

@usableFromInline
let utf8Transitions: [UInt8] = [
    0, 12, 24, 36, 60, 96, 84, 12, 12, 12, 48, 72, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12,
    12, 0, 12, 12, 12, 12, 12, 0, 12, 0, 12, 12, 12, 24, 12, 12, 12, 12, 12, 24, 12, 24, 12, 12,
    12, 12, 12, 12, 12, 12, 12, 24, 12, 12, 12, 12, 12, 24, 12, 12, 12, 12, 12, 12, 12, 24, 12, 12,
    12, 12, 12, 12, 12, 12, 12, 36, 12, 36, 12, 12, 12, 36, 12, 12, 12, 12, 12, 36, 12, 36, 12, 12,
    12, 36, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12,
]
