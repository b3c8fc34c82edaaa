import Foundation

/// The parameters both sides agreed on for permessage-deflate (RFC 7692 §7).
public struct DeflateParameters: Sendable, Equatable {
    /// The gateway resets its compressor after each message.
    public var serverNoContextTakeover = false
    /// The client resets its compressor after each message, so the decompressor can too.
    public var clientNoContextTakeover = false
    /// Window bits of the gateway's compressor.
    public var serverWindowBits = 15
    /// Window bits the client compresses with (the gateway's decompressor needs this much).
    public var clientWindowBits = 15
    /// `Sec-WebSocket-Extensions` value of the 101.
    public var responseHeader = "permessage-deflate"
}

/// permessage-deflate as agreed with a WebSocket backend, from the gateway's side of that hop.
public struct BackendDeflate: Sendable, Equatable {
    /// The backend compresses without history (its server_no_context_takeover): inflate afresh each message.
    public var backendResetsEachMessage = false
    /// The gateway must compress without history (client_no_context_takeover).
    public var gatewayResetsEachMessage = false
    /// The backend's window (server_max_window_bits): the gateway's inflater needs at least this.
    public var backendWindowBits = 15
}

public struct DeflateAnswerError: Error, CustomStringConvertible, Sendable {
    public var reason: String
    public var description: String { self.reason }
}

/// Server-side negotiation of permessage-deflate: picks the first offer in the client's
/// `Sec-WebSocket-Extensions` that is well-formed and acceptable under the route's settings, and
/// declines (ignores) the rest — a malformed offer never fails the handshake.
public enum DeflateNegotiation {
    /// - Parameter headerValues: every `Sec-WebSocket-Extensions` header line of the request.
    public static func negotiate(_ headerValues: [String], settings: CompressionSettings) -> DeflateParameters? {
        guard settings.enabled else { return nil }
        for offer in Self.offers(headerValues) where offer.name == "permessage-deflate" {
            if let accepted = Self.accept(offer.parameters, settings: settings) { return accepted }
        }
        return nil
    }

    struct Offer {
        var name: String
        var parameters: [(name: String, value: String?)]
    }

    /// `ext1; a; b=1, ext2; c="2"` → offers in order. Quoted values are unquoted; a part that does
    /// not parse makes its whole offer unusable (it is returned without a name).
    static func offers(_ headerValues: [String]) -> [Offer] {
        var result: [Offer] = []
        for line in headerValues {
            for element in Self.split(line, on: ",") {
                let parts = Self.split(element, on: ";").map { $0.trimmingCharacters(in: .whitespaces) }
                guard let name = parts.first, HTTPTokens.isToken(name) else { continue }
                var parameters: [(String, String?)] = []
                var valid = true
                for part in parts.dropFirst() {
                    let pair = part.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                    guard let key = pair.first, HTTPTokens.isToken(key) else { valid = false; break }
                    var value: String? = pair.count == 2 ? pair[1] : nil
                    if let raw = value, raw.hasPrefix("\"") {
                        guard raw.count >= 2, raw.hasSuffix("\"") else { valid = false; break }
                        value = String(raw.dropFirst().dropLast())
                    }
                    if let value, !HTTPTokens.isToken(value) { valid = false; break }
                    parameters.append((key.lowercased(), value))
                }
                result.append(Offer(name: valid ? name.lowercased() : "", parameters: parameters))
            }
        }
        return result
    }

    /// Splits on `separator` outside double quotes.
    private static func split(_ text: String, on separator: Character) -> [String] {
        var pieces: [String] = []
        var current = ""
        var quoted = false
        for character in text {
            if character == "\"" { quoted.toggle() }
            if character == separator && !quoted {
                pieces.append(current)
                current = ""
            } else {
                current.append(character)
            }
        }
        pieces.append(current)
        return pieces.filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
    }

    /// RFC 7692 §7.1: unknown or repeated parameters and out-of-range values decline the offer.
    static func accept(_ parameters: [(name: String, value: String?)], settings: CompressionSettings) -> DeflateParameters? {
        var seen = Set<String>()
        var accepted = DeflateParameters()
        accepted.serverWindowBits = settings.windowBits
        var clientAllowsWindowBits = false
        var clientWindowLimit = 15
        var serverWindowLimit: Int?
        for (name, value) in parameters {
            guard seen.insert(name).inserted else { return nil }
            switch name {
            case "server_no_context_takeover":
                guard value == nil else { return nil }
                accepted.serverNoContextTakeover = true
            case "client_no_context_takeover":
                guard value == nil else { return nil }
                accepted.clientNoContextTakeover = true
            case "server_max_window_bits":
                guard let bits = value.flatMap(Self.windowBits) else { return nil }
                // zlib cannot compress raw deflate with an 8-bit window (it uses 9): decline.
                guard bits >= 9 else { return nil }
                serverWindowLimit = bits
            case "client_max_window_bits":
                if let value {
                    guard let bits = Self.windowBits(value) else { return nil }
                    clientWindowLimit = bits
                }
                clientAllowsWindowBits = true
            default:
                return nil
            }
        }
        if settings.serverNoContextTakeover { accepted.serverNoContextTakeover = true }
        if let serverWindowLimit { accepted.serverWindowBits = min(serverWindowLimit, settings.windowBits) }
        // Without the client's consent it may use any window up to 15, so the decompressor must too.
        accepted.clientWindowBits = clientAllowsWindowBits ? min(clientWindowLimit, settings.clientWindowBits) : 15

        var response = ["permessage-deflate"]
        if accepted.serverNoContextTakeover { response.append("server_no_context_takeover") }
        if accepted.clientNoContextTakeover { response.append("client_no_context_takeover") }
        if serverWindowLimit != nil { response.append("server_max_window_bits=\(accepted.serverWindowBits)") }
        if clientAllowsWindowBits && accepted.clientWindowBits < 15 || clientWindowLimit < 15 {
            response.append("client_max_window_bits=\(accepted.clientWindowBits)")
        }
        accepted.responseHeader = response.joined(separator: "; ")
        return accepted
    }

    /// The offer the gateway makes to WebSocket backends: plain, so the backend may not restrict the
    /// gateway's window (zlib could not honour 8 bits) and every other parameter is its choice.
    public static let backendOffer = "permessage-deflate"

    /// Checks a backend's answer to ``backendOffer`` (RFC 7692 §7.1 from the client's side). nil: not
    /// accepted; an error: accepted in a way the gateway must fail the connection for.
    public static func backendAccepted(_ headerValues: [String]) -> Result<BackendDeflate?, DeflateAnswerError> {
        let answers = Self.offers(headerValues)
        guard !answers.isEmpty else { return .success(nil) }
        guard answers.count == 1, answers[0].name == "permessage-deflate" else {
            return .failure(DeflateAnswerError(reason: "extension answered that was not offered: \(headerValues.joined(separator: ", "))"))
        }
        var agreed = BackendDeflate()
        var seen = Set<String>()
        for (name, value) in answers[0].parameters {
            guard seen.insert(name).inserted else { return .failure(DeflateAnswerError(reason: "permessage-deflate parameter \(name) repeated")) }
            switch (name, value) {
            case ("server_no_context_takeover", nil):
                agreed.backendResetsEachMessage = true
            case ("client_no_context_takeover", nil):
                agreed.gatewayResetsEachMessage = true
            case ("server_max_window_bits", let value?):
                guard let bits = Self.windowBits(value) else { return .failure(DeflateAnswerError(reason: "invalid server_max_window_bits=\(value)")) }
                agreed.backendWindowBits = bits
            default:
                // client_max_window_bits was not offered, so it may not come back either.
                return .failure(DeflateAnswerError(reason: "permessage-deflate answered with \(name)\(value.map { "=\($0)" } ?? "")"))
            }
        }
        return .success(agreed)
    }

    /// 8…15 written as plain decimal (no sign, no leading zero).
    private static func windowBits(_ text: String) -> Int? {
        guard let first = text.first, first != "0", text.allSatisfy(\.isASCIIDigit), let bits = Int(text), (8...15).contains(bits) else { return nil }
        return bits
    }
}

private extension Character {
    var isASCIIDigit: Bool { self >= "0" && self <= "9" }
}
