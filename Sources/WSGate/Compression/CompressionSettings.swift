import Yams

/// permessage-deflate (RFC 7692) with clients, per route.
public struct CompressionSettings: Sendable, Equatable {
    /// Whether the extension is negotiated at all; off, clients get plain frames.
    public var enabled = false
    /// zlib level for messages to the client: 1 (fastest) … 9 (smallest).
    public var level = 6
    /// Window of the gateway's compressor (9–15): 2^bits bytes of history. Smaller saves memory
    /// (about 2^(bits+3) bytes per compressing session) at some cost in ratio.
    public var windowBits = 15
    /// zlib's memory level for the compressor (1–9): about 2^(level+9) bytes of hash and output state.
    public var memoryLevel = 8
    /// The window a client may compress with, asked for when the client allows it (8–15): the
    /// gateway's decompressor then needs 2^bits bytes instead of 32 KiB.
    public var clientWindowBits = 15
    /// Reset the compressor after every message (and let it go between messages), trading ratio
    /// for memory: an idle compressing session then holds no compressor at all.
    public var serverNoContextTakeover = false
    /// Single-frame messages smaller than this go uncompressed. 0 by default: with context takeover
    /// even short messages shrink (they repeat what came before), and browsers compress everything too.
    public var minimumMessageBytes = 0

    public init() {}
}

// MARK: YAML keys

extension CompressionSettings: ConfigurationSection {
    /// `compression: off | on | {enabled, level, window_bits, memory_level, client_window_bits,
    /// server_no_context_takeover, min_size}`; the long form turns it on unless it says otherwise.
    static var keys: [ConfigurationKey<Self>] {
        [
            .value("enabled", \.enabled, .bool),
            .value("level", \.level, .integer(in: 1...9)),
            .value("window_bits", \.windowBits, .integer(in: 9...15)),
            .value("memory_level", \.memoryLevel, .integer(in: 1...9)),
            .value("client_window_bits", \.clientWindowBits, .integer(in: 8...15)),
            .value("server_no_context_takeover", \.serverNoContextTakeover, .bool),
            .value("min_size", \.minimumMessageBytes, .size(allowingZero: true)),
        ]
    }

    static var blank: Self {
        var settings = Self()
        settings.enabled = true
        return settings
    }

    static var shorthand: String? { "enabled" }

    static func describe(_ settings: Self) -> [String] {
        settings.enabled ? ConfigurationKey.describe(settings, self.keys) : ["enabled=off"]
    }
}
