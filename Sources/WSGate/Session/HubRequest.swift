import NIOHTTP1

/// How a handshake names a held or shared session: a resume id (`?resume=ID` or a `resume.ID`
/// subprotocol entry, with the number of the last message received as `?last=N` or
/// `resume-last.N`) and, on a shared route, a share key (`?share=KEY`, `X-WSGate-Share: KEY`, or
/// the authenticated user). Taken out of the request.
public struct HubRequest: Sendable, Equatable {
    /// The session's place in the gateway's table: the share key, else the resume id. nil until
    /// admission for `share.key: user` (the user is the key).
    public var key: String?
    /// Whether `key` is a share key: a client joining without the owner's resume id is a viewer.
    public var shared: Bool
    /// The owner's own id: it reattaches the owner.
    public var resumeID: String?
    /// The number of the last message the client received (messages are numbered from 1 per
    /// session); nil: it goes on after what the gateway last wrote to its old connection.
    public var last: UInt64?

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
        guard route.resume != nil || route.share != nil else { return .success(nil) }
        var query = QueryParameters(target: head.uri)
        defer { head.uri = query.target }
        var request = HubRequest(key: nil, shared: false)
        if route.resume != nil {
            let id = query.remove("resume") ?? CredentialExtractor.removeSubprotocolEntries(prefix: "resume.", from: &head.headers)
            let lastText = query.remove("last") ?? CredentialExtractor.removeSubprotocolEntries(prefix: "resume-last.", from: &head.headers)
            if let id {
                guard Self.isValidID(id) else { return .failure(Self.badID("resume id")) }
                request.resumeID = id
                request.key = id
            }
            if let lastText {
                guard let last = UInt64(lastText) else {
                    return .failure(HTTPRefusal(.badRequest, "last must be the number of the last message received, got '\(lastText)'", closesConnection: true, label: "resume"))
                }
                request.last = last
            }
        }
        if let share = route.share {
            let key: String?
            switch share.key {
            case .query: key = query.remove("share")
            case .header:
                key = head.headers.first(name: "x-wsgate-share")
                head.headers.remove(name: "x-wsgate-share")
            case .user:
                // Filled in once the user is known.
                request.shared = true
                request.key = nil
                return .success(request)
            }
            if let key {
                guard Self.isValidID(key) else { return .failure(Self.badID("share key")) }
                request.key = key
                request.shared = true
            }
        }
        return .success(request.key == nil ? nil : request)
    }

    private static func badID(_ what: String) -> HTTPRefusal {
        HTTPRefusal(.badRequest, "a \(what) must be \(Self.idLengths.lowerBound)-\(Self.idLengths.upperBound) characters of A-Z a-z 0-9 - _ (at least 128 random bits)",
                    closesConnection: true, label: "resume")
    }
}
