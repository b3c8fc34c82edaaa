import NIOCore

/// Who a session belongs to and how long the credential it was opened with holds: the session ends
/// (1008) when the credential expires or, for a token file's token, leaves the file.
struct SessionCredentials: Sendable {
    /// For the session's log line and the admin API.
    var user: String?
    /// A JWT's `exp` plus the leeway.
    var expiry: NIODeadline?
    var lease: TokenLease?

    init(user: String? = nil, expiry: NIODeadline? = nil, lease: TokenLease? = nil) {
        self.user = user
        self.expiry = expiry
        self.lease = lease
    }
}
