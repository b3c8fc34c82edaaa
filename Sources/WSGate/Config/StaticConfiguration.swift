import Yams

/// A route that serves files (`static:`), for the web client next to its WebSocket: plain GET and
/// HEAD requests get files, WebSocket handshakes go to the route's backend (if it has one).
public struct StaticSettings: Sendable, Equatable {
    /// The directory, absolute and with symlinks resolved (a relative one is taken from the
    /// configuration file's directory; ``ConfigurationFiles`` resolves it). Nothing outside it is ever served.
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

// MARK: YAML keys

extension StaticSettings: ConfigurationSection {
    /// `static: DIR` or `static: {root: DIR, index: FILE|"", listing: BOOL, cache_control: TEXT}`.
    static var keys: [ConfigurationKey<Self>] {
        [
            .value("root", \.root, .path).required(),
            .custom("index", read: { files, reader, node, key throws(ConfigurationError) in
                let index = try reader.string(node, key)
                guard !index.contains("/"), !index.hasPrefix(".") else { throw reader.fail(node, key, "expected a file name, got '\(index)'") }
                files.index = index.isEmpty ? nil : index
            }, show: { ["index=\($0.index ?? "none")"] }),
            .value("listing", \.listing, .bool),
            .value("cache_control", \.cacheControl, .string),
        ]
    }

    static var blank: Self { Self(root: "") }
    static var shorthand: String? { "root" }
}
