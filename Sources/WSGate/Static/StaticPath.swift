/// A request path turned into the file segments under a static root, or the reason it never
/// can be one. Pure, so every traversal trick is unit-tested.
///
/// Refused: percent-encoding that is malformed or decodes to NUL, `/` or `\`; `.` and `..`
/// segments (in any encoding, since the check runs after decoding); hidden names (`.git`,
/// `.env`), which a deployed directory should not expose.
enum StaticPath {
    enum Refusal: Error, Equatable {
        /// 400: not a valid path.
        case malformed(String)
        /// 404: a valid path that is never served.
        case hidden
    }

    /// The segments of `path` below the route's `prefix` (the route path; `exact` routes serve
    /// the index of the root). An empty result is the root directory itself. `isDirectory` is
    /// whether the request named a directory (it ended with `/`).
    static func segments(of path: Substring, below prefix: String) -> Result<(segments: [String], isDirectory: Bool), Refusal> {
        var remainder = path.hasPrefix(prefix) ? path.dropFirst(prefix.count) : path
        if remainder.hasPrefix("/") { remainder = remainder.dropFirst() }
        var segments: [String] = []
        for raw in remainder.split(separator: "/", omittingEmptySubsequences: true) {
            guard let decoded = Self.percentDecoded(raw) else { return .failure(.malformed("bad percent-encoding in '\(raw)'")) }
            if decoded == "." || decoded == ".." { return .failure(.malformed("'\(decoded)' segment")) }
            if decoded.contains("/") || decoded.contains("\\") || decoded.contains("\0") {
                return .failure(.malformed("encoded separator or NUL in '\(raw)'"))
            }
            if decoded.hasPrefix(".") { return .failure(.hidden) }
            segments.append(decoded)
        }
        // `/vnc` (the route's own path) names the root too, but without its `/`: it gets redirected.
        let isDirectory = path.hasSuffix("/")
        return .success((segments, isDirectory))
    }

    /// Strict RFC 3986 decoding into UTF-8; nil for a `%` not followed by two hex digits or bytes
    /// that are not UTF-8.
    static func percentDecoded(_ text: Substring) -> String? {
        guard text.contains("%") else { return String(text) }
        var bytes: [UInt8] = []
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next().flatMap(Self.hexValue), let low = iterator.next().flatMap(Self.hexValue) else { return nil }
            bytes.append(high << 4 | low)
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
