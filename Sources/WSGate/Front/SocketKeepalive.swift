#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import NIOPosix

/// The socket options behind ``KeepaliveSettings``, for a listener's accepted connections and for a
/// backend connection once it is open (TCP only: a unix socket has no keepalive).
enum SocketKeepalive {
    /// `(option, value)` pairs: SO_KEEPALIVE, then the timings.
    static func options(_ settings: KeepaliveSettings) -> [(ChannelOptions.Types.SocketOption, SocketOptionValue)] {
        guard let idle = settings.idle else { return [] }
        return [
            (ChannelOptions.socketOption(.so_keepalive), 1),
            (ChannelOptions.tcpOption(NIOBSDSocket.Option(rawValue: TCP_KEEPIDLE)), SocketOptionValue(idle.nanoseconds / 1_000_000_000)),
            (ChannelOptions.tcpOption(NIOBSDSocket.Option(rawValue: TCP_KEEPINTVL)), SocketOptionValue(settings.interval.nanoseconds / 1_000_000_000)),
            (ChannelOptions.tcpOption(NIOBSDSocket.Option(rawValue: TCP_KEEPCNT)), SocketOptionValue(settings.count)),
        ]
    }

    static func apply(_ settings: KeepaliveSettings, to bootstrap: ServerBootstrap) -> ServerBootstrap {
        self.options(settings).reduce(bootstrap) { $0.childChannelOption($1.0, value: $1.1) }
    }

    /// On an open TCP connection; a failure is only logged by the caller's choice (keepalive is a
    /// safety net, not worth ending a session over).
    static func apply(_ settings: KeepaliveSettings, to channel: Channel) throws {
        guard let options = channel.syncOptions else { return }
        for (option, value) in self.options(settings) {
            try options.setOption(option, value: value)
        }
    }
}
