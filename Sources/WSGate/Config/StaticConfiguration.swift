/// A route that serves files (`static:`), for the web client next to its WebSocket: plain GET and
/// HEAD requests get files, WebSocket handshakes go to the route's backend (if it has one).
public struct StaticSettings: Sendable, Equatable {
    /// The directory, absolute and with symlinks resolved (the loader resolves a relative one
    /// against the configuration file's directory). Nothing outside it is ever served.
    public var root: String
    /// Served for a directory's URL (`/app/` → `/app/index.html`); nil: none.
    public var index: String? = "index.html"
    /// An HTML list of a directory without an index file; off by default (404).
    public var listing = false
    /// Sent with every file; `no-cache` makes browsers revalidate with `If-None-Match`, which
    /// costs a 304 and keeps a redeployed client from running stale code.
    public var cacheControl = "no-cache"

    public init(root: String) {
        self.root = root
    }
}
