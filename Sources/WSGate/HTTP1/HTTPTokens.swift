import NIOHTTP1

/// Comma-separated header token lists (RFC 9110 §5.6.1), compared case-insensitively where the RFC says so.
public enum HTTPTokens {
    /// All comma-separated elements of every `name` header, trimmed, empty ones dropped.
    public static func list(_ headers: HTTPHeaders, _ name: String) -> [Substring] {
        var result: [Substring] = []
        for value in headers[name] {
            for element in value.split(separator: ",") {
                let trimmed = element.drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }
                let token = Substring(String(trimmed.reversed()))
                if !token.isEmpty { result.append(token) }
            }
        }
        return result
    }

    /// Whether any `name` header lists `token` (case-insensitive).
    public static func contains(_ headers: HTTPHeaders, _ name: String, token: String) -> Bool {
        self.list(headers, name).contains { $0.lowercased() == token }
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
