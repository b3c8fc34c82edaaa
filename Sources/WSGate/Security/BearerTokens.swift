import Crypto

/// A set of static bearer tokens, kept as SHA-256 digests. A presented token is hashed and compared
/// with every digest in constant time, so neither the comparison's timing nor its early exit says
/// how close a guess was.
struct BearerTokens: Sendable {
    private let digests: [SHA256Digest]

    init(tokens: [String]) {
        self.digests = tokens.map { SHA256.hash(data: Array($0.utf8)) }
    }

    /// One token per line; blank lines and `#` comments ignored.
    init(file text: String) {
        self.init(tokens: text.split(whereSeparator: \.isNewline).map { $0.trimmingWhitespace() }.filter { !$0.isEmpty && !$0.hasPrefix("#") })
    }

    /// Tokens separated by commas or whitespace (an environment variable).
    init(list text: String) {
        self.init(tokens: text.split { $0 == "," || $0.isWhitespace }.map(String.init))
    }

    var count: Int { self.digests.count }

    func contains(_ token: String) -> Bool {
        let presented = SHA256.hash(data: Array(token.utf8))
        var found = false
        for digest in self.digests {
            found = ConstantTime.equal(digest, presented) || found
        }
        return found
    }
}

enum ConstantTime {
    /// Equal length and content, in time that depends only on the length.
    static func equal<A: Sequence, B: Sequence>(_ a: A, _ b: B) -> Bool where A.Element == UInt8, B.Element == UInt8 {
        let left = Array(a)
        let right = Array(b)
        guard left.count == right.count else { return false }
        var difference: UInt8 = 0
        for index in left.indices {
            difference |= left[index] ^ right[index]
        }
        return difference == 0
    }
}
