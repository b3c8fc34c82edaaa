import NIOCore

/// How long the credential a session was opened with holds, and what it holds: the session ends
/// (1008) when the credential expires or, for a token file's token, leaves the file, and gives
/// back its places in the route's session limits when it ends.
struct SessionCredentials: Sendable {
    /// A JWT's `exp` plus the leeway, or an auth service's `expires_at`.
    var expiry: NIODeadline?
    var lease: TokenLease?
    var quotaTickets: [QuotaTicket] = []
}
