import NIOCore

/// TCP keepalive on client and backend sockets (`server.keepalive`): a peer that vanished without
/// a FIN or RST (a host powered off, a NAT or firewall that forgot the flow) is found by the kernel
/// in `idle + interval × count` instead of never. WebSocket clients also get liveness pings; for a
/// TCP service that sends nothing, keepalive is the only check. On by default: 60 s idle, then a
/// probe every 10 s, 6 unanswered ones end the connection (two minutes in all).
public struct KeepaliveSettings: Sendable, Equatable {
    /// Quiet time before the first probe; nil: keepalive off.
    public var idle: TimeAmount? = .seconds(60)
    public var interval: TimeAmount = .seconds(10)
    public var count: Int = 6

    public init() {}
}

extension KeepaliveSettings: ConfigurationSection {
    static var keys: [ConfigurationKey<Self>] {
        // The kernel takes whole seconds, at most 32,767 for idle and interval.
        let wholeSeconds = { (time: TimeAmount) in time.nanoseconds % 1_000_000_000 == 0 && time <= .seconds(32767) }
        return [
            .value("idle", \.idle, ConfigurationValue<TimeAmount?>.durationOrOff
                .checked("must be whole seconds from 1s to 32767s, or off") { $0.map(wholeSeconds) ?? true }),
            .value("interval", \.interval, ConfigurationValue<TimeAmount>.positiveDuration.checked("must be whole seconds from 1s to 32767s", wholeSeconds)),
            .value("count", \.count, .integer(in: 1...127)),
        ]
    }

    static var blank: Self { Self() }
}
