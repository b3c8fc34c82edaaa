import Crypto
import Foundation

/// The `Sec-WebSocket-Accept` computation and key checks of RFC 6455 §4.2.2.
public enum WebSocketAccept {
    public static let guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    /// base64(SHA-1(key + GUID)).
    public static func value(forKey key: String) -> String {
        let digest = Insecure.SHA1.hash(data: Data((key + guid).utf8))
        return Data(digest).base64EncodedString()
    }

    /// A client key must be the base64 encoding of exactly 16 bytes.
    public static func isValidKey(_ key: String) -> Bool {
        guard key.utf8.count == 24, let decoded = Data(base64Encoded: key) else { return false }
        return decoded.count == 16
    }

    /// A fresh random key for the gateway's own handshake with a WebSocket backend, drawn from the
    /// same per-thread batch of system randomness as masking keys (not one kernel call per byte).
    public static func makeKey() -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(16)
        for _ in 0..<4 {
            let mask = MaskKeys.next()
            bytes += [mask.key.0, mask.key.1, mask.key.2, mask.key.3]
        }
        return Data(bytes).base64EncodedString()
    }
}
