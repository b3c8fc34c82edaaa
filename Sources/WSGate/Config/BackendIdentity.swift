import NIOHTTP1
import Yams

/// `backend_identity`: who the client is, told to a WebSocket backend in request headers — the
/// authenticated user, and chosen claims of its JWT. The client can never send these itself: every
/// configured name is removed from its request, whether or not the gateway has a value for it.
public struct BackendIdentity: Sendable, Equatable {
    /// The header naming the user (an htpasswd user, a JWT's `sub`, a client certificate's CN);
    /// nil: none.
    public var userHeader: String? = "X-WSGate-User"
    /// JWT claim → header, in the order given.
    public var claimHeaders: [ClaimHeader] = []

    public struct ClaimHeader: Sendable, Equatable {
        public var claim: String
        public var header: String
    }

    public init(userHeader: String? = "X-WSGate-User", claimHeaders: [ClaimHeader] = []) {
        self.userHeader = userHeader
        self.claimHeaders = claimHeaders
    }

    /// Every configured header name, to strip from the client's request.
    var headerNames: [String] {
        (self.userHeader.map { [$0] } ?? []) + self.claimHeaders.map(\.header)
    }

    /// The headers for one session. A value no header can carry (control characters) refuses the
    /// handshake: a backend that trusts these headers must not see a session with one missing.
    func headers(user: String?, claims: [String: String]) throws(HTTPRefusal) -> [(name: String, value: String)] {
        var headers: [(name: String, value: String)] = []
        if let name = self.userHeader, let user {
            headers.append((name, try Self.checked(user, for: name)))
        }
        for entry in self.claimHeaders {
            if let value = claims[entry.claim] { headers.append((entry.header, try Self.checked(value, for: entry.header))) }
        }
        return headers
    }

    /// A value as a header may carry it, or the refusal.
    static func checked(_ value: String, for header: String) throws(HTTPRefusal) -> String {
        // RFC 9110 §5.5: visible characters, spaces and tabs, nothing that could end the line.
        guard value.utf8.allSatisfy({ $0 == 0x09 || ($0 >= 0x20 && $0 != 0x7F) }) else {
            throw HTTPRefusal(.forbidden, "the identity for \(header) holds control characters", closesConnection: true, label: "identity")
        }
        return value.trimmingWhitespace()
    }
}

extension BackendIdentity: ConfigurationSection {
    static var keys: [ConfigurationKey<Self>] {
        let headerName = ConfigurationValue<String>.parsed({ HTTPTokens.isToken($0) ? $0 : nil }, invalid: { "'\($0)' is not a valid header name" }, show: { $0 })
        return [
            .custom("header", read: { identity, reader, node, key throws(ConfigurationError) in
                // `off` or null: no user header (claim headers only).
                if case .scalar(let scalar) = node, ["off", "~", "null", ""].contains(scalar.string) {
                    identity.userHeader = nil
                } else {
                    identity.userHeader = try headerName.read(reader, node, key)
                }
            }, show: { identity in ["header=\(identity.userHeader ?? "off")"] }),
            .custom("claims", read: { identity, reader, node, key throws(ConfigurationError) in
                guard case .mapping(let mapping) = node else { throw reader.fail(node, key, "expected a mapping of JWT claim names to header names") }
                var entries: [ClaimHeader] = []
                for (claimNode, headerNode) in mapping {
                    guard let claim = claimNode.string, !claim.isEmpty else { throw reader.fail(claimNode, key, "claim names must be strings") }
                    let header = try headerName.read(reader, headerNode, "\(key).\(claim)")
                    entries.append(ClaimHeader(claim: claim, header: header))
                }
                identity.claimHeaders = entries
            }, show: { identity in identity.claimHeaders.isEmpty ? [] : ["claims=" + identity.claimHeaders.map { "\($0.claim):\($0.header)" }.joined(separator: ",")] }),
        ]
    }

    static var blank: Self { Self() }

    static func finish(_ identity: inout Self, _ reader: ConfigurationReader, _ node: Node, _ key: String) throws(ConfigurationError) {
        let names = identity.headerNames.map { $0.lowercased() }
        if let repeated = names.first(where: { name in names.filter { $0 == name }.count > 1 }) {
            throw reader.fail(node, key, "header \(repeated) is named twice")
        }
        if let reserved = names.first(where: { BackendRequestHeaders.notForwarded.contains($0) || $0 == "authorization" || $0 == "cookie" }) {
            throw reader.fail(node, key, "\(reserved) cannot carry the identity (the gateway sets or removes it)")
        }
    }
}
