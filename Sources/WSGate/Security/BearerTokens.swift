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
        self.contains(digest: Self.digest(token))
    }

    static func digest(_ token: String) -> SHA256Digest {
        SHA256.hash(data: Array(token.utf8))
    }

    func contains(digest presented: SHA256Digest) -> Bool {
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

/// A session's claim on a bearer token in a token file: checked again whenever the file changes, so
/// a token taken out of the file ends the sessions it opened. Holds the token's digest, never the token.
struct TokenLease: Sendable {
    private let file: WatchedFile<BearerTokens>
    private let digest: SHA256Digest
    private var checkedVersion: Int

    /// Names the token without revealing it (for per-user counts): the start of its digest.
    var tokenID: String {
        "token:" + self.digest.prefix(6).map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }

    /// Admits `token` against the file as it is now; nil: the token is not in it.
    init?(file: WatchedFile<BearerTokens>, token: String) {
        let current = file.versioned
        let digest = BearerTokens.digest(token)
        guard current.value.contains(digest: digest) else { return nil }
        self.file = file
        self.digest = digest
        self.checkedVersion = current.version
    }

    /// Whether the token is still in the file (the file is looked at once a second at most, and the
    /// token checked only when it changed).
    mutating func isStillValid() -> Bool {
        let current = self.file.versioned
        guard current.version != self.checkedVersion else { return true }
        guard current.value.contains(digest: self.digest) else { return false }
        self.checkedVersion = current.version
        return true
    }
}
