import NIOHTTP1

/// Comma-separated header token lists (RFC 9110 §5.6.1), compared case-insensitively where the RFC says so.
public enum HTTPTokens {
    /// All comma-separated elements of every `name` header (`name` in lowercase), trimmed, empty
    /// ones dropped.
    public static func list(_ headers: HTTPHeaders, _ name: String) -> [Substring] {
        var result: [Substring] = []
        for (field, value) in headers where Self.equalsIgnoringASCIICase(field, name) {
            Self.forEachElement(of: value) { element in
                result.append(element)
                return true
            }
        }
        return result
    }

    /// Whether any `name` header lists `token` (ASCII case-insensitive; both given in lowercase).
    /// Runs several times per handshake, so it compares bytes in place: no lowercased copies, no
    /// split arrays, no Unicode-aware character comparisons.
    public static func contains(_ headers: HTTPHeaders, _ name: String, token: String) -> Bool {
        for (field, value) in headers where Self.equalsIgnoringASCIICase(field, name) {
            var found = false
            Self.forEachElement(of: value) { element in
                found = Self.equalsIgnoringASCIICase(element, token)
                return !found
            }
            if found { return true }
        }
        return false
    }

    /// Calls `body` with each element of a comma-separated `value`, without the spaces and tabs
    /// around it (RFC 9110 §5.6.1), empty ones skipped, until `body` returns false.
    static func forEachElement(of value: String, _ body: (Substring) -> Bool) {
        let text = Substring(value)
        let bytes = text.utf8
        var start = bytes.startIndex
        while start < bytes.endIndex {
            let end = bytes[start...].firstIndex(of: UInt8(ascii: ",")) ?? bytes.endIndex
            let element = Self.trimmed(text[start..<end])
            if !element.isEmpty, !body(element) { return }
            start = end < bytes.endIndex ? bytes.index(after: end) : end
        }
    }

    /// Without the spaces and tabs (OWS) at either end.
    static func trimmed(_ text: Substring) -> Substring {
        let bytes = text.utf8
        func isSpace(_ byte: UInt8) -> Bool { byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        guard let first = bytes.firstIndex(where: { !isSpace($0) }), let last = bytes.lastIndex(where: { !isSpace($0) }) else {
            return text[text.endIndex...]
        }
        // The byte after `last` is ASCII or the end, so this index is on a scalar boundary.
        return text[first..<bytes.index(after: last)]
    }

    static func equalsIgnoringASCIICase(_ text: some StringProtocol, _ lowercase: some StringProtocol) -> Bool {
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
