import CCrypt
import Crypto
import Foundation

/// An htpasswd file: `user:hash` lines. Accepted hashes: bcrypt (`$2y$`/`$2b$`/`$2a$`, from
/// `htpasswd -B`), SHA-crypt (`$5$`, `$6$`) through libcrypt, and `{SHA}` (`htpasswd -s`, unsalted:
/// accepted for old files, not recommended). Apache's MD5 (`$apr1$`) and plain text are refused when
/// the file is read, so a weak file fails loudly instead of half-working.
struct Htpasswd: Sendable {
    struct ParseError: Error, CustomStringConvertible {
        var line: Int
        var message: String
        var description: String { "line \(self.line): \(self.message)" }
    }

    let hashes: [String: String]

    init(file text: String) throws {
        var hashes: [String: String] = [:]
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.trimmingWhitespace()
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let colon = line.firstIndex(of: ":") else { throw ParseError(line: index + 1, message: "expected user:hash") }
            let user = String(line[..<colon])
            let hash = String(line[line.index(after: colon)...])
            guard !user.isEmpty else { throw ParseError(line: index + 1, message: "empty user name") }
            guard Self.isSupported(hash) else {
                throw ParseError(line: index + 1, message: "unsupported hash for '\(user)' (use bcrypt: htpasswd -B)")
            }
            hashes[user] = hash
        }
        self.hashes = hashes
    }

    static func isSupported(_ hash: String) -> Bool {
        ["$2y$", "$2b$", "$2a$", "$5$", "$6$", "{SHA}"].contains { hash.hasPrefix($0) }
    }

    /// Slow on purpose for bcrypt (tens of milliseconds): call it off the event loop. An unknown user
    /// costs the same as a wrong password.
    func verify(user: String, password: String) -> Bool {
        guard let hash = self.hashes[user] else {
            _ = Self.check(password: password, hash: Self.decoyHash)
            return false
        }
        return Self.check(password: password, hash: hash)
    }

    /// Hashed with cost 10, like `htpasswd -B`, so a missing user takes as long as a present one.
    static let decoyHash = "$2b$10$FLQimgMUKwTvTuII3dEJJesVzgF.plNiTkdOXX6rdfesJQx/sAcpK"

    static func check(password: String, hash: String) -> Bool {
        if hash.hasPrefix("{SHA}") {
            let digest = Insecure.SHA1.hash(data: Array(password.utf8))
            guard let expected = Data(base64Encoded: String(hash.dropFirst(5))) else { return false }
            return ConstantTime.equal(digest, expected)
        }
        guard let computed = Self.crypt(password, setting: hash) else { return false }
        return ConstantTime.equal(computed.utf8, hash.utf8)
    }

    /// libcrypt's reentrant `crypt_rn`; nil when the setting is not one it knows.
    static func crypt(_ phrase: String, setting: String) -> String? {
        let size = MemoryLayout<crypt_data>.size
        let data = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: MemoryLayout<crypt_data>.alignment)
        defer {
            data.initializeMemory(as: UInt8.self, repeating: 0, count: size)  // scrub the passphrase's traces
            data.deallocate()
        }
        data.initializeMemory(as: UInt8.self, repeating: 0, count: size)
        guard let result = crypt_rn(phrase, setting, data, Int32(size)) else { return nil }
        let text = String(cString: result)
        return text.hasPrefix("*") ? nil : text
    }
}

extension Htpasswd {
    /// Identifies a (user, password, stored hash) triple without keeping the password.
    func cacheKey(user: String, password: String) -> [UInt8]? {
        guard let hash = self.hashes[user] else { return nil }
        return Array(SHA256.hash(data: Array("\(user)\u{0}\(password)\u{0}\(hash)".utf8)))
    }
}
