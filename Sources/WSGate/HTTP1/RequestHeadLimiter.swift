/// Counts request-head bytes as they arrive so an oversized head is refused (431) before it is
/// parsed or buffered. Pure: fed raw bytes, it finds the blank line that ends each head.
///
/// After a head ends, bytes are not counted until ``requestEnded()`` (they are a body, or the
/// next pipelined request, which is then counted leniently from its own start).
public struct RequestHeadLimiter: Sendable {
    public enum Verdict: Equatable, Sendable {
        case withinLimit
        case tooLarge
    }

    public let limit: Int
    private var counted = 0
    /// How much of "\r\n\r\n" the last bytes matched (a lone "\n\n" also ends a head, as parsers accept it).
    private var matched = 0
    private var inHead = true

    public init(limit: Int) { self.limit = limit }

    public mutating func requestEnded() {
        self.inHead = true
        self.counted = 0
        self.matched = 0
    }

    public mutating func consume(_ bytes: UnsafeRawBufferPointer) -> Verdict {
        guard self.inHead else { return .withinLimit }
        // Local state in the loop (a stored property would be written back per byte), and bytes
        // other than CR and LF skipped outright while nothing of the blank line has matched.
        var matched = self.matched
        var offset = 0
        while offset < bytes.count {
            let byte = bytes[offset]
            offset += 1
            if matched == 0 && byte != UInt8(ascii: "\r") && byte != UInt8(ascii: "\n") { continue }
            switch (byte, matched) {
            case (UInt8(ascii: "\r"), 0), (UInt8(ascii: "\r"), 2): matched += 1
            case (UInt8(ascii: "\n"), 1): matched = 2
            case (UInt8(ascii: "\n"), 3), (UInt8(ascii: "\n"), 2): matched = 4
            case (UInt8(ascii: "\n"), 0): matched = 2
            case (UInt8(ascii: "\r"), _): matched = 1
            default: matched = 0
            }
            if matched == 4 {
                self.matched = matched
                self.inHead = false
                self.counted += offset
                return self.counted > self.limit ? .tooLarge : .withinLimit
            }
        }
        self.matched = matched
        self.counted += bytes.count
        return self.counted > self.limit ? .tooLarge : .withinLimit
    }
}
