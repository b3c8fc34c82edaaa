import NIOHTTP1

/// How a handshake names a held or shared session: a resume id (`?resume=ID` or a `resume.ID`
/// subprotocol entry, with the last message received as `?last=N` or `resume-last.N`) or a share
/// key (`?share=KEY`, `X-WSGate-Share: KEY`, or the authenticated user). Taken out of the request.
public struct HubRequest: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// `last`: the number of the last message the client received (messages are numbered from 1
        /// per session); nil: it goes on from what the gateway last confirmed written to it.
        case resume(last: UInt64?)
        case share
    }

    public var kind: Kind
    /// nil until admission for `share.key: user` (the user is the key).
    public var id: String?

    /// Ids are secrets where there is no auth: at least 128 bits' worth, base64url or hex.
    static let idLengths = 22...128

    static func isValidID(_ id: String) -> Bool {
        Self.idLengths.contains(id.utf8.count) && id.utf8.allSatisfy { byte in
            (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
                || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
        }
    }

    /// The route's resume or share request in `head`, if any; a malformed one is refused (400).
    static func extract(from head: inout HTTPRequestHead, route: RouteConfiguration) -> Result<HubRequest?, HTTPRefusal> {
        if route.resume != nil {
            var query = QueryParameters(target: head.uri)
            let id = query.remove("resume") ?? CredentialExtractor.removeSubprotocolEntries(prefix: "resume.", from: &head.headers)
            let lastText = query.remove("last") ?? CredentialExtractor.removeSubprotocolEntries(prefix: "resume-last.", from: &head.headers)
            head.uri = query.target
            guard let id else { return .success(nil) }
            guard Self.isValidID(id) else { return .failure(Self.badID("resume id")) }
            var last: UInt64?
            if let lastText {
                guard let parsed = UInt64(lastText) else {
                    return .failure(HTTPRefusal(.badRequest, "last must be the number of the last message received, got '\(lastText)'", closesConnection: true, label: "resume"))
                }
                last = parsed
            }
            return .success(HubRequest(kind: .resume(last: last), id: id))
        }
        guard let share = route.share else { return .success(nil) }
        let key: String?
        switch share.key {
        case .query:
            var query = QueryParameters(target: head.uri)
            key = query.remove("share")
            head.uri = query.target
        case .header:
            key = head.headers.first(name: "x-wsgate-share")
            head.headers.remove(name: "x-wsgate-share")
        case .user:
            return .success(HubRequest(kind: .share, id: nil))
        }
        guard let key else { return .success(nil) }
        guard Self.isValidID(key) else { return .failure(Self.badID("share key")) }
        return .success(HubRequest(kind: .share, id: key))
    }

    private static func badID(_ what: String) -> HTTPRefusal {
        HTTPRefusal(.badRequest, "a \(what) must be \(Self.idLengths.lowerBound)-\(Self.idLengths.upperBound) characters of A-Z a-z 0-9 - _ (at least 128 random bits)",
                    closesConnection: true, label: "resume")
    }
}
