import NIOSSL
import X509

/// Client certificate subjects (mTLS): how they are written and how routes match them.
enum ClientSubject {
    /// RFC 4514 form, most significant last: `CN=alice,O=Ops`.
    static func describe(_ certificate: NIOSSLCertificate) -> String? {
        guard let der = try? certificate.toDERBytes(), let parsed = try? Certificate(derEncoded: der) else { return nil }
        return parsed.subject.description
    }

    /// A pattern with a comma is a whole subject; without, one attribute (`CN=alice`); either may
    /// end in `*` to match a prefix.
    static func matches(_ subject: String, patterns: [String]) -> Bool {
        let attributes = self.attributes(subject)
        return patterns.contains { pattern in
            if pattern.contains(",") { return self.matches(subject, pattern) }
            return attributes.contains { self.matches($0, pattern) }
        }
    }

    static func commonName(_ subject: String) -> String? {
        self.attributes(subject).first { $0.hasPrefix("CN=") }.map { String($0.dropFirst(3)) }
    }

    /// `KEY=VALUE` parts, split on commas that are not escaped.
    static func attributes(_ subject: String) -> [String] {
        var parts: [String] = []
        var current = ""
        var escaped = false
        for character in subject {
            if escaped {
                current.append(character)
                escaped = false
            } else if character == "\\" {
                current.append(character)
                escaped = true
            } else if character == "," || character == "+" {
                parts.append(current)
                current = ""
            } else {
                current.append(character)
            }
        }
        parts.append(current)
        return parts
    }

    private static func matches(_ value: String, _ pattern: String) -> Bool {
        if pattern.hasSuffix("*") { return value.hasPrefix(pattern.dropLast()) }
        return value == pattern
    }
}
