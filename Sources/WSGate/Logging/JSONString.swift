/// JSON string literals (RFC 8259 §7) for the hand-written JSON of log lines and recordings:
/// quotes, backslashes and control characters escaped, U+2028/U+2029 too (JavaScript readers).
enum JSONString {
    static func append(_ string: String, to out: inout String) {
        out += "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{2028}": out += "\\u2028"
            case "\u{2029}": out += "\\u2029"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }

    static func quoted(_ string: String) -> String {
        var out = ""
        out.reserveCapacity(string.utf8.count + 2)
        self.append(string, to: &out)
        return out
    }
}
