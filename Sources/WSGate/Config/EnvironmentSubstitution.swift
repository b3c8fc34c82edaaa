/// `${NAME}` and `${NAME:-default}` in a configuration file, replaced from the environment before
/// the YAML is read, so that any setting can come from the container's environment (a secret's
/// path, a backend address) without templating the file. `$${` stands for a literal `${`.
/// Comments are left alone. A `${NAME}` whose variable is unset is an error naming the line, not
/// an empty value.
enum EnvironmentSubstitution {
    static func apply(_ text: String, environment: [String: String], file: String?) throws(ConfigurationError) -> String {
        guard text.contains("${") else { return text }
        var output = ""
        output.reserveCapacity(text.utf8.count)
        var lineNumber = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if lineNumber > 0 { output += "\n" }
            defer { lineNumber += 1 }
            let (content, comment) = Self.splitComment(line)
            var rest = content[...]
            while let dollar = rest.firstIndex(of: "$") {
                output += rest[..<dollar]
                let after = rest[dollar...].dropFirst()
                if after.hasPrefix("${") {  // $${ → ${
                    output += "${"
                    rest = after.dropFirst(2)
                    continue
                }
                guard after.hasPrefix("{"), let close = after.firstIndex(of: "}") else {
                    output += "$"
                    rest = after
                    continue
                }
                let expression = after[after.index(after: after.startIndex)..<close]
                var name = expression, fallback: Substring?
                if let separator = expression.range(of: ":-") {
                    name = expression[..<separator.lowerBound]
                    fallback = expression[separator.upperBound...]
                }
                guard !name.isEmpty, name.allSatisfy({ $0 == "_" || ($0.isASCII && ($0.isLetter || $0.isNumber)) }) else {
                    throw ConfigurationError(file: file, line: lineNumber + 1, message: "invalid variable reference '${\(expression)}' (use ${NAME} or ${NAME:-default})")
                }
                if let value = environment[String(name)], !(value.isEmpty && fallback != nil) {
                    output += value
                } else if let fallback {
                    output += fallback
                } else {
                    throw ConfigurationError(file: file, line: lineNumber + 1, message: "environment variable \(name) is not set (use ${\(name):-default} for a default)")
                }
                rest = after[after.index(after: close)...]
            }
            output += rest
            output += comment
        }
        return output
    }

    /// A line's content and its trailing comment: a `#` at the start or after a space, outside quotes.
    private static func splitComment(_ line: Substring) -> (Substring, Substring) {
        var quote: Character?
        var previous: Character = " "
        for index in line.indices {
            let character = line[index]
            if let open = quote {
                if character == open { quote = nil }
            } else if character == "\"" || character == "'" {
                quote = character
            } else if character == "#" && (previous == " " || previous == "\t") {
                return (line[..<index], line[index...])
            }
            previous = character
        }
        return (line, line[line.endIndex...])
    }
}
