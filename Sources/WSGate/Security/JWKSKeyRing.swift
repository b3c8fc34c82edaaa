import AsyncHTTPClient
import Foundation
import JWTKit
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// The keys a JWT route verifies with: its fixed keys (secret, PEM keys, a JWKS file) and, with
/// `jwks_url`, an identity provider's JWKS fetched over HTTP(S) — at start, again once it is older
/// than `jwks_refresh`, and when a token names a key id not seen yet (a rotated key), at most once
/// every ``unknownKeyPause``. A fetch that fails keeps the keys already held (logged); tokens
/// signed with keys never fetched are refused (401), so it fails closed.
final class JWKSKeyRing: Sendable {
    /// A flood of tokens with made-up key ids costs one fetch per this, not one per token.
    static let unknownKeyPause: TimeAmount = .seconds(5)
    static let fetchTimeout: TimeAmount = .seconds(5)
    static let maxDocumentBytes = 1024 * 1024

    private let settings: JWTSettings
    private let logger: Logger
    /// The keys, the key ids among them (jwt-kit answers an unknown id with its default key, so
    /// the ring keeps its own list), when the JWKS was last fetched and last asked for.
    private let state: NIOLockedValueBox<(keys: Keys, fetched: NIODeadline?, attempted: NIODeadline?)>

    struct Keys: Sendable {
        var collection: JWTKeyCollection
        var ids: Set<String>
    }

    private init(settings: JWTSettings, logger: Logger, keys: Keys, fetched: NIODeadline?) {
        self.settings = settings
        self.logger = logger
        self.state = NIOLockedValueBox((keys, fetched, nil))
    }

    /// The fixed keys, and the provider's if it answers now.
    static func make(_ settings: JWTSettings, logger: Logger) async throws -> JWKSKeyRing {
        guard let url = settings.jwksURL else {
            return JWKSKeyRing(settings: settings, logger: logger, keys: try await Self.collection(settings, jwks: nil), fetched: nil)
        }
        do {
            let document = try await Self.fetch(url)
            return JWKSKeyRing(settings: settings, logger: logger, keys: try await Self.collection(settings, jwks: document), fetched: .now())
        } catch {
            logger.warning("JWKS not fetched at start, tokens signed with its keys are refused until it is: \(error)", metadata: ["url": "\(url)"])
            let ring = JWKSKeyRing(settings: settings, logger: logger, keys: try await Self.collection(settings, jwks: nil), fetched: nil)
            ring.state.withLockedValue { $0.attempted = .now() }
            return ring
        }
    }

    /// The keys to verify with; fetched again first when older than `jwks_refresh`.
    func current() async -> Keys {
        let (keys, stale) = self.state.withLockedValue { state -> (Keys, Bool) in
            guard self.settings.jwksURL != nil, let fetched = state.fetched else { return (state.keys, false) }
            return (state.keys, NIODeadline.now() - fetched >= self.settings.jwksRefresh && self.claimAttempt(&state, pause: Self.unknownKeyPause))
        }
        guard stale else { return keys }
        return await self.refetch() ?? keys
    }

    /// A token named a key id these keys lack: the provider may have rotated. Nil when it is not
    /// time to ask again or the fetch failed.
    func afterUnknownKey() async -> Keys? {
        guard self.settings.jwksURL != nil, self.state.withLockedValue({ self.claimAttempt(&$0, pause: Self.unknownKeyPause) }) else { return nil }
        return await self.refetch()
    }

    private func claimAttempt(_ state: inout (keys: Keys, fetched: NIODeadline?, attempted: NIODeadline?), pause: TimeAmount) -> Bool {
        let now = NIODeadline.now()
        if let attempted = state.attempted, now - attempted < pause { return false }
        state.attempted = now
        return true
    }

    private func refetch() async -> Keys? {
        guard let url = self.settings.jwksURL else { return nil }
        do {
            let keys = try await Self.collection(self.settings, jwks: try await Self.fetch(url))
            self.state.withLockedValue { state in
                state.keys = keys
                state.fetched = .now()
            }
            self.logger.info("JWKS fetched", metadata: ["url": "\(url)"])
            return keys
        } catch {
            self.logger.warning("JWKS fetch failed, keeping the keys held: \(error)", metadata: ["url": "\(url)"])
            return nil
        }
    }

    struct FetchFailure: Error, CustomStringConvertible {
        var description: String
    }

    private static func fetch(_ url: String) async throws -> String {
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "Accept", value: "application/json")
        let response = try await AuthCallout.client.execute(request, deadline: .now() + Self.fetchTimeout)
        let body = try await response.body.collect(upTo: Self.maxDocumentBytes)
        guard response.status == .ok else { throw FetchFailure(description: "status \(response.status.code)") }
        return String(buffer: body)
    }

    /// A collection of the fixed keys plus a JWKS document's.
    static func collection(_ settings: JWTSettings, jwks: String?) async throws -> Keys {
        let keys = JWTKeyCollection()
        var ids: Set<String> = []
        let named = !settings.publicKeyFiles.isEmpty || settings.jwksFile != nil || settings.jwksURL != nil
        if let file = settings.hmacSecretFile {
            var text = try String(contentsOfFile: file, encoding: .utf8)
            while text.last?.isNewline == true { text.removeLast() }
            let secret: [UInt8]
            switch settings.hmacSecretEncoding {
            case .raw:
                secret = Array(text.utf8)
            case .base64url:
                guard let data = Base64URL.decode(text.trimmingWhitespace()) else { throw JWTVerifier.Failure(description: "\(file): not base64url") }
                secret = Array(data)
            }
            guard secret.count >= 32 else { throw JWTVerifier.Failure(description: "\(file): an HS256 secret needs at least 32 bytes") }
            await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256, kid: named ? "hs256" : nil)
            if named { ids.insert("hs256") }
        }
        for (index, file) in settings.publicKeyFiles.enumerated() {
            let text = try String(contentsOfFile: file, encoding: .utf8)
            let kid = JWKIdentifier(string: "key\(index)")
            ids.insert(kid.string)
            // A private key's public half too (websockify's JWTTokenApi takes either).
            if let rsa = (try? Insecure.RSA.PublicKey(pem: text)) ?? (try? Insecure.RSA.PrivateKey(pem: text))?.publicKey {
                await keys.add(rsa: rsa, digestAlgorithm: .sha256, kid: kid)
            } else if let ec = (try? ES256PublicKey(pem: text)) ?? (try? ES256PrivateKey(pem: text))?.publicKey {
                await keys.add(ecdsa: ec, kid: kid)
            } else if let ed = try? EdDSA.PublicKey(pem: text) {
                await keys.add(eddsa: ed, kid: kid)
            } else {
                throw JWTVerifier.Failure(description: "\(file): not a PEM RSA, P-256 or Ed25519 public key")
            }
        }
        for document in [try settings.jwksFile.map { try String(contentsOfFile: $0, encoding: .utf8) }, jwks].compactMap({ $0 }) {
            try await keys.add(jwksJSON: document)
            ids.formUnion(Self.keyIDs(document))
        }
        return Keys(collection: keys, ids: ids)
    }

    static func keyIDs(_ document: String) -> [String] {
        struct Document: Decodable {
            struct Key: Decodable { var kid: String? }
            var keys: [Key]
        }
        return ((try? JSONDecoder().decode(Document.self, from: Data(document.utf8)))?.keys ?? []).compactMap(\.kid)
    }
}
