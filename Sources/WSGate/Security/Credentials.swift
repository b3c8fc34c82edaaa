import Foundation
import NIOHTTP1

/// What a client presented to prove who it is.
public enum Credential: Sendable, Equatable {
    case token(String)
    case basic(user: String, password: String)
}

/// Finds a route's credential (and a dynamic-target token) in a handshake and removes every trace
/// of them, so neither reaches the backend nor a log line. Pure.
enum CredentialExtractor {
    struct Extracted: Equatable {
        var credential: Credential?
        /// The `?token=` (or Host label) naming a dynamic target.
        var targetToken: String?
    }

    static func extract(from head: inout HTTPRequestHead, auth: AuthSettings?, targets: DynamicTargets?) -> Extracted {
        var found = Extracted()
        let tokenTargets = targets?.tokenFile != nil ? targets : nil
        guard auth != nil || tokenTargets != nil else { return found }  // most routes: the request stays as it is
        var query = QueryParameters(target: head.uri)
        if let auth {
            let sources = auth.sources
            var fromHeader: Credential?
            if sources.header, let value = head.headers.first(name: "authorization") {
                fromHeader = Self.parseAuthorization(value)
                head.headers.remove(name: "authorization")
            }
            var fromSubprotocol: String?
            if let prefix = sources.subprotocolPrefix {
                fromSubprotocol = Self.removeSubprotocolEntries(prefix: prefix, from: &head.headers)
            }
            var fromCookie: String?
            if let name = sources.cookie {
                fromCookie = Self.removeCookie(named: name, from: &head.headers)
            }
            var fromQuery: String?
            // A parameter that names the dynamic target is the target's, not a credential.
            let isTargetParameter = tokenTargets?.tokenLocation == .query && tokenTargets?.queryParameter == sources.queryParameter
            if let name = sources.queryParameter, !isTargetParameter {
                fromQuery = query.remove(name)
            }
            found.credential = fromHeader ?? (fromSubprotocol ?? fromCookie ?? fromQuery).map { .token($0) }
        }
        if let targets = tokenTargets {
            switch targets.tokenLocation {
            case .query:
                // As websockify: the query parameter, else a cookie of the same name; else a
                // `token.<value>` subprotocol entry (browsers can set no cookie for another origin).
                found.targetToken = query.remove(targets.queryParameter) ?? Self.removeCookie(named: targets.queryParameter, from: &head.headers)
                    ?? Self.removeSubprotocolEntries(prefix: "\(targets.queryParameter).", from: &head.headers)
            case .host:
                if let host = head.headers.first(name: "host"), let label = host.split(separator: ".").first, host.contains(".") {
                    found.targetToken = String(label)
                }
            }
        }
        head.uri = query.target
        return found
    }

    /// `Bearer <token>` or `Basic <base64(user:password)>`; anything else counts as no credential.
    static func parseAuthorization(_ value: String) -> Credential? {
        let trimmed = value.trimmingWhitespace()
        guard let space = trimmed.firstIndex(of: " ") else { return nil }
        let scheme = trimmed[..<space].lowercased()
        let rest = trimmed[trimmed.index(after: space)...].trimmingWhitespace()
        switch scheme {
        case "bearer":
            return rest.isEmpty ? nil : .token(rest)
        case "basic":
            guard let decoded = Data(base64Encoded: rest), let text = String(validatingUTF8Bytes: decoded),
                  let colon = text.firstIndex(of: ":") else { return nil }
            return .basic(user: String(text[..<colon]), password: String(text[text.index(after: colon)...]))
        default:
            return nil
        }
    }

    /// Takes `<prefix><token>` entries out of `Sec-WebSocket-Protocol`; returns the first token.
    static func removeSubprotocolEntries(prefix: String, from headers: inout HTTPHeaders) -> String? {
        self.removeEntries(of: "Sec-WebSocket-Protocol", separator: ",", joiner: ", ", from: &headers) { entry in
            entry.hasPrefix(prefix) ? String(entry.dropFirst(prefix.count)) : nil
        }
    }

    /// Takes the named cookie out of every `Cookie` header; returns its (first) value.
    static func removeCookie(named name: String, from headers: inout HTTPHeaders) -> String? {
        self.removeEntries(of: "Cookie", separator: ";", joiner: "; ", from: &headers) { entry in
            guard let equals = entry.firstIndex(of: "="), entry[..<equals] == name else { return nil }
            return String(entry[entry.index(after: equals)...])
        }
    }

    /// Removes the list entries of header `name` that `take` claims (by returning their value), and
    /// the header itself when nothing is left; returns the first non-empty value taken.
    private static func removeEntries(of name: String, separator: Character, joiner: String, from headers: inout HTTPHeaders,
                                      _ take: (String) -> String?) -> String? {
        let values = headers[name]
        guard !values.isEmpty else { return nil }
        var taken: String?
        var kept: [String] = []
        for value in values {
            for part in value.split(separator: separator) {
                let entry = part.trimmingWhitespace()
                if let value = take(entry) {
                    if taken == nil && !value.isEmpty { taken = value }
                } else if !entry.isEmpty {
                    kept.append(entry)
                }
            }
        }
        headers.remove(name: name)
        if !kept.isEmpty { headers.add(name: name, value: kept.joined(separator: joiner)) }
        return taken
    }
}

/// A request target's query, with parameters removable without disturbing the others' spelling.
struct QueryParameters {
    private let path: Substring
    private var pairs: [Substring]
    private let fragment: Substring

    init(target: String) {
        let fragmentStart = target.firstIndex(of: "#") ?? target.endIndex
        self.fragment = target[fragmentStart...]
        let beforeFragment = target[..<fragmentStart]
        if let questionMark = beforeFragment.firstIndex(of: "?") {
            self.path = beforeFragment[..<questionMark]
            self.pairs = beforeFragment[beforeFragment.index(after: questionMark)...].split(separator: "&")
        } else {
            self.path = beforeFragment
            self.pairs = []
        }
    }

    /// Removes every `name=` parameter; returns the first one's value, percent-decoded.
    mutating func remove(_ name: String) -> String? {
        let value = self.value(name)
        self.pairs.removeAll { $0.prefix { $0 != "=" } == name }
        return value
    }

    /// The first `name=` parameter's value that decodes, percent-decoded (`""` for a bare `name`).
    func value(_ name: String) -> String? {
        for pair in self.pairs {
            let key = pair.prefix { $0 != "=" }
            if key == name, let value = Self.percentDecoded(pair.dropFirst(key.count + 1)) { return value }
        }
        return nil
    }

    var target: String {
        (self.pairs.isEmpty ? String(self.path) : self.path + "?" + self.pairs.joined(separator: "&")) + self.fragment
    }

    static func percentDecoded(_ text: Substring) -> String? {
        PercentEncoding.decode(text, plusIsSpace: true)
    }
}

extension String {
    init?<Bytes: Collection>(validatingUTF8Bytes bytes: Bytes) where Bytes.Element == UInt8 {
        var validator = UTF8Validator()
        guard validator.consume(bytes), validator.isComplete else { return nil }
        self.init(decoding: bytes, as: UTF8.self)
    }
}
