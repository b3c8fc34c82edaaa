import NIOCore

/// Human-friendly durations and sizes used by the YAML file and the flags.
public enum ValueParsing {
    /// `500ms`, `30s`, `5m`, `2h`, or a bare number of seconds. `0` is allowed (callers decide what it means).
    public static func duration(_ text: String) -> TimeAmount? {
        let trimmed = text.trimmingWhitespace()
        let units: [(String, Int64)] = [("ms", 1_000_000), ("s", 1_000_000_000), ("m", 60_000_000_000), ("h", 3_600_000_000_000)]
        for (suffix, nanos) in units where trimmed.hasSuffix(suffix) {
            let number = trimmed.dropLast(suffix.count)
            // "5ms" must not be read as minutes of "5m" + "s": ms is tried first, and "s" only when no "m" precedes.
            if suffix == "s" && number.hasSuffix("m") { continue }
            guard let value = Double(number), value >= 0, value.isFinite else { return nil }
            return .nanoseconds(Int64(value * Double(nanos)))
        }
        guard let seconds = Double(trimmed), seconds >= 0, seconds.isFinite else { return nil }
        return .nanoseconds(Int64(seconds * 1_000_000_000))
    }

    /// A byte count: `65536`, `64KiB`, `16MiB`, `1GiB` (also `KB`/`MB`/`GB`, decimal).
    public static func size(_ text: String) -> Int? {
        let trimmed = text.trimmingWhitespace()
        let units: [(String, Int)] = [
            ("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30),
            ("KB", 1_000), ("MB", 1_000_000), ("GB", 1_000_000_000), ("B", 1),
        ]
        for (suffix, factor) in units where trimmed.hasSuffix(suffix) {
            guard let value = Int(trimmed.dropLast(suffix.count).trimmingWhitespace()), value >= 0 else { return nil }
            let (product, overflow) = value.multipliedReportingOverflow(by: factor)
            return overflow ? nil : product
        }
        guard let value = Int(trimmed), value >= 0 else { return nil }
        return value
    }
}

extension StringProtocol {
    func trimmingWhitespace() -> String {
        var text = Substring(self)
        while let first = text.first, first.isWhitespace { text.removeFirst() }
        while let last = text.last, last.isWhitespace { text.removeLast() }
        return String(text)
    }
}
