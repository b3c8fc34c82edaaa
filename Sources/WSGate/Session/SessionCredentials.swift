import NIOCore

/// Who a session belongs to and how long the credential it was opened with holds: the session ends
/// (1008) when the credential expires or, for a token file's token, leaves the file.
struct SessionCredentials: Sendable {
    /// For the session's log line and the admin API.
    var user: String?
    /// A JWT's `exp` plus the leeway.
    var expiry: NIODeadline?
    var lease: TokenLease?
    /// Places in the route's session limits, given back when the session ends.
    var quotaTickets: [QuotaTicket]

    init(user: String? = nil, expiry: NIODeadline? = nil, lease: TokenLease? = nil, quotaTickets: [QuotaTicket] = []) {
        self.user = user
        self.expiry = expiry
        self.lease = lease
        self.quotaTickets = quotaTickets
    }
}
