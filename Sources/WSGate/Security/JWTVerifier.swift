import Foundation
import JWTKit
import Logging

/// Checks JSON Web Tokens with jwt-kit: the signature with the configured keys (HS256, RS256,
/// ES256, EdDSA, or a JWKS), then the registered claims wsgate relies on.
struct JWTVerifier: Sendable {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// The claims of a verified token; what the route and target checks need.
    struct Claims: Sendable {
        var subject: String?
        var routes: [String]?
        var target: String?
        /// `exp` plus the leeway: when a session opened with this token must end.
        var expires: Date?
        /// Every string, number and boolean claim as text (for `backend_identity`'s claim headers).
        var texts: [String: String] = [:]
    }

    private let keys: JWKSKeyRing
    private let settings: JWTSettings

    private init(keys: JWKSKeyRing, settings: JWTSettings) {
        self.keys = keys
        self.settings = settings
    }

    /// Loads every key named by the settings (fetching the JWKS of `jwks_url`).
    static func make(_ settings: JWTSettings, logger: Logger = Logger(label: "wsgate")) async throws -> JWTVerifier {
        JWTVerifier(keys: try await JWKSKeyRing.make(settings, logger: logger), settings: settings)
    }

    func verify(_ token: String, now: Date = Date()) async throws -> Claims {
        let payload: GenericClaims
        do {
            let keys = await self.keys.current()
            do {
                payload = try await keys.collection.verify(token, as: GenericClaims.self, iteratingKeys: true)
            } catch {
                // A key id not seen yet: the provider may have rotated its keys.
                guard let kid = Self.keyID(of: token), !keys.ids.contains(kid), let fresh = await self.keys.afterUnknownKey() else { throw error }
                payload = try await fresh.collection.verify(token, as: GenericClaims.self, iteratingKeys: true)
            }
        } catch {
            throw Failure(description: "JWT rejected: \(Self.describe(error))")
        }
        let leeway = Double(self.settings.leeway.nanoseconds) / 1e9
        let epoch = now.timeIntervalSince1970
        var expires: Date?
        switch payload.claims["exp"] {
        case .number(let exp):
            guard epoch < exp + leeway else { throw Failure(description: "JWT expired") }
            expires = Date(timeIntervalSince1970: exp + leeway)
        case nil:
            if self.settings.requireExpiry { throw Failure(description: "JWT has no exp claim") }
        default:
            throw Failure(description: "JWT exp is not a number")
        }
        if let nbf = payload.claims["nbf"] {
            guard case .number(let value) = nbf else { throw Failure(description: "JWT nbf is not a number") }
            guard epoch + leeway >= value else { throw Failure(description: "JWT not valid yet (nbf)") }
        }
        if let audiences = self.settings.audiences {
            let presented = payload.claims["aud"]?.strings ?? []
            guard presented.contains(where: audiences.contains) else { throw Failure(description: "JWT aud \(presented) is not accepted") }
        }
        if let issuer = self.settings.issuer {
            guard case .string(issuer) = payload.claims["iss"] else { throw Failure(description: "JWT iss is not \(issuer)") }
        }
        var claims = Claims()
        claims.expires = expires
        for (name, value) in payload.claims {
            switch value {
            case .string(let text): claims.texts[name] = text
            case .number(let number): claims.texts[name] = number == number.rounded() && abs(number) < 1e15 ? String(Int64(number)) : String(number)
            case .bool(let flag): claims.texts[name] = String(flag)
            default: break
            }
        }
        if case .string(let subject) = payload.claims["sub"] { claims.subject = subject }
        if let routes = payload.claims[self.settings.routesClaim] {
            guard let list = routes.strings else { throw Failure(description: "JWT claim \(self.settings.routesClaim) is not a string or a list of strings") }
            claims.routes = list
        }
        if let target = payload.claims[self.settings.targetClaim] {
            guard case .string(let value) = target else { throw Failure(description: "JWT claim \(self.settings.targetClaim) is not a string") }
            claims.target = value
        } else if let host = claims.texts["host"], let port = claims.texts["port"] {
            // websockify's JWTTokenApi: the target in `host` and `port` claims.
            claims.target = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        }
        return claims
    }

    /// The `kid` of a token's header, read before any verification (only to pick a key).
    static func keyID(of token: String) -> String? {
        guard let header = token.split(separator: ".", omittingEmptySubsequences: false).first, header.count <= 4096,
              let data = Base64URL.decode(header),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
        return object["kid"] as? String
    }

    private static func describe(_ error: Error) -> String {
        if let error = error as? JWTError { return error.reason ?? "\(error.errorType)" }
        return "\(error)"
    }
}

/// Every claim of a token, whatever its names: which ones matter is configuration.
struct GenericClaims: JWTPayload {
    var claims: [String: ClaimValue]

    init(from decoder: Decoder) throws {
        self.claims = try decoder.singleValueContainer().decode([String: ClaimValue].self)
    }

    func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(self.claims)
    }

    /// Claims are checked by ``JWTVerifier`` after the signature, with its leeway and settings.
    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

enum ClaimValue: Codable, Sendable, Equatable {
    case string(String)
    case number(Double)
    case bool(Bool)
    case array([ClaimValue])
    case object([String: ClaimValue])
    case null

    init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null }
        else if let value = try? container.decode(Bool.self) { self = .bool(value) }
        else if let value = try? container.decode(Double.self) { self = .number(value) }
        else if let value = try? container.decode(String.self) { self = .string(value) }
        else if let value = try? container.decode([ClaimValue].self) { self = .array(value) }
        else { self = .object(try container.decode([String: ClaimValue].self)) }
    }

    func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .string(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .bool(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        case .null: try container.encodeNil()
        }
    }

    /// A string, or a list of strings (as `aud` may be).
    var strings: [String]? {
        switch self {
        case .string(let value): return [value]
        case .array(let values):
            var strings: [String] = []
            for case .string(let value) in values { strings.append(value) }
            return strings.count == values.count ? strings : nil
        default: return nil
        }
    }
}
