import NIOCore
import Yams

/// `resume:` on a tcp/unix route: a client that drops without a close frame may come back with the
/// same resume id within `window` and carry on where it left off.
public struct ResumeSettings: Sendable, Equatable {
    /// How long the service's connection is held for a resume.
    public var window: TimeAmount = .seconds(30)
    /// The service's most recent output kept for a resume, and the most it may send while no one
    /// is attached (beyond it the session ends).
    public var buffer = 1024 * 1024

    public init() {}
}

/// `share:` on a tcp/unix route: clients presenting the same share key join one service connection.
public struct ShareSettings: Sendable, Equatable {
    public enum KeySource: String, Sendable, Equatable {
        /// `?share=KEY`.
        case query
        /// `X-WSGate-Share: KEY`.
        case header
        /// The authenticated user's name: a user's tabs share one session.
        case user
    }

    public enum Viewers: String, Sendable, Equatable {
        /// Only the owner's messages reach the service.
        case readOnly = "read_only"
        case all
    }

    public enum Ends: String, Sendable, Equatable {
        case owner
        case lastMember = "last_member"
    }

    public var key = KeySource.query
    public var viewers = Viewers.readOnly
    public var maxViewers = 50
    /// How far (payload bytes) a member may fall behind the service before it is dropped (1008).
    public var queue = 1024 * 1024
    /// Messages a late joiner is given from before it joined.
    public var replayLast = 0
    public var ends = Ends.owner

    public init() {}
}

// MARK: YAML keys

extension ResumeSettings: ConfigurationSection {
    static var keys: [ConfigurationKey<Self>] {
        [
            .value("window", \.window, .positiveDuration),
            .value("buffer", \.buffer, ConfigurationValue<Int>.size().checked("must be at least 4KiB") { $0 >= 4096 }),
        ]
    }

    static var blank: Self { Self() }
}

extension ShareSettings: ConfigurationSection {
    static var keys: [ConfigurationKey<Self>] {
        [
            .value("key", \.key, .choice("'query', 'header' or 'user'")),
            .value("viewers", \.viewers, .choice("'read_only' or 'all'")),
            .value("max_viewers", \.maxViewers, .integer(in: 1...100_000)),
            .value("queue", \.queue, ConfigurationValue<Int>.size().checked("must be at least 4KiB") { $0 >= 4096 }),
            .value("replay_last", \.replayLast, .integer(in: 0...100_000)),
            .value("ends", \.ends, .choice("'owner' or 'last_member'")),
        ]
    }

    static var blank: Self { Self() }
}
