import NIOHTTP1

/// Comma-separated header token lists (RFC 9110 §5.6.1), compared case-insensitively where the RFC says so.
public enum HTTPTokens {
    /// All comma-separated elements of every `name` header, trimmed, empty ones dropped.
    public static func list(_ headers: HTTPHeaders, _ name: String) -> [Substring] {
        var result: [Substring] = []
        for value in headers[canonicalForm: name] {
            for element in value.split(separator: ",") {
                let trimmed = Self.trimmed(element)
                if !trimmed.isEmpty { result.append(trimmed) }
            }
        }
        return result
    }

    /// Whether any `name` header lists `token` (ASCII case-insensitive; `token` given in lowercase).
    /// Runs once per request for several headers, so it compares in place instead of lowercasing copies.
    public static func contains(_ headers: HTTPHeaders, _ name: String, token: String) -> Bool {
        for value in headers[canonicalForm: name] {
            for element in value.split(separator: ",") where Self.equalsIgnoringASCIICase(Self.trimmed(element), token) {
                return true
            }
        }
        return false
    }

    static func trimmed(_ text: Substring) -> Substring {
        var start = text.startIndex
        var end = text.endIndex
        while start < end, text[start] == " " || text[start] == "\t" { start = text.index(after: start) }
        while end > start {
            let before = text.index(before: end)
            guard text[before] == " " || text[before] == "\t" else { break }
            end = before
        }
        return text[start..<end]
    }

    static func equalsIgnoringASCIICase(_ text: Substring, _ lowercase: String) -> Bool {
        guard text.utf8.count == lowercase.utf8.count else { return false }
        for (a, b) in zip(text.utf8, lowercase.utf8) {
            let folded = (a >= UInt8(ascii: "A") && a <= UInt8(ascii: "Z")) ? a | 0x20 : a
            if folded != b { return false }
        }
        return true
    }

    /// RFC 9110 token characters, which subprotocol names must use (RFC 6455 §4.1).
    public static func isToken<S: StringProtocol>(_ text: S) -> Bool {
        guard !text.isEmpty else { return false }
        return text.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                return true
            default:
                return "!#$%&'*+-.^_`|~".utf8.contains(byte)
            }
        }
    }
}
