import Foundation

/// base64url (RFC 4648 §5), padding optional, as JWTs and JWKs write it (jwt-kit keeps its own
/// decoder to itself).
enum Base64URL {
    static func decode(_ text: some StringProtocol) -> Data? {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        return Data(base64Encoded: base64)
    }
}
