import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// Server-wide connection counts and per-IP handshake rates, shared by every event loop.
///
/// One lock around two small dictionaries: taken once when a connection opens, once when it closes
/// and once per handshake, which is noise next to the syscalls of the same events.
final class ClientLimiter: Sendable {
    enum Refusal: Error, Equatable {
        case tooManyConnections(limit: Int)
        case tooManyConnectionsFromIP(limit: Int)
        case handshakeRate(retryAfterSeconds: Int)

        var status: Int {
            switch self {
            case .tooManyConnections: return 503
            case .tooManyConnectionsFromIP, .handshakeRate: return 429
            }
        }

        var reason: String {
            switch self {
            case .tooManyConnections(let limit): return "connection limit reached (\(limit) open)"
            case .tooManyConnectionsFromIP(let limit): return "per-IP connection limit reached (\(limit) open from this address)"
            case .handshakeRate: return "per-IP handshake rate exceeded"
            }
        }

        /// The answer a handshake gets: the status and reason, with `Retry-After` (the bucket's wait
        /// for the rate limit, a second for the connection limits, as ``ConnectionRefuser`` says).
        var httpRefusal: HTTPRefusal {
            var retryAfter = 1
            if case .handshakeRate(let seconds) = self { retryAfter = seconds }
            return HTTPRefusal(HTTPResponseStatus(statusCode: self.status), self.reason, headers: ["Retry-After": String(retryAfter)], closesConnection: true, label: self.label)
        }

        /// The metric's `reason` label.
        var label: String {
            switch self {
            case .tooManyConnections: return "max_connections"
            case .tooManyConnectionsFromIP: return "max_connections_per_ip"
            case .handshakeRate: return "handshake_rate_per_ip"
            }
        }
    }

    /// A token bucket: `rate` tokens a second, holding at most `burst`.
    struct Bucket {
        var tokens: Double
        var updated: NIODeadline
    }

    private struct State {
        var total = 0
        var perIP: [IPAddressBytes: Int] = [:]
        var buckets: [IPAddressBytes: Bucket] = [:]
    }

    /// Buckets tracked before full (idle) ones are dropped; bounds memory under a spoofed-source flood.
    static let maxTrackedBuckets = 100_000

    let maxConnections: Int
    let maxConnectionsPerIP: Int?
    let rate: Double?
    let burst: Double
    private let state = NIOLockedValueBox(State())

    init(limits: ConnectionLimits, fileDescriptorLimit: Int?) {
        // Each session holds two descriptors; keep some for listeners, logs and files.
        self.maxConnections = limits.maxConnections ?? max(64, ((fileDescriptorLimit ?? 20_000) - 64) / 2)
        self.maxConnectionsPerIP = limits.maxConnectionsPerIP
        self.rate = limits.handshakeRatePerIP
        self.burst = max(1, (limits.handshakeRatePerIP ?? 1) * 2)
    }

    var openConnections: Int { self.state.withLockedValue { $0.total } }

    /// Counts a new client connection, or says why it is over a limit (and then does not count it).
    /// Through ``ClientSlot``, which gives it back once.
    func open(_ address: SocketAddress?) -> Refusal? {
        let ip = self.countedIP(address)
        return self.state.withLockedValue { state -> Refusal? in
            guard state.total < self.maxConnections else { return .tooManyConnections(limit: self.maxConnections) }
            if let ip, let limit = self.maxConnectionsPerIP {
                let count = state.perIP[ip, default: 0]
                guard count < limit else { return .tooManyConnectionsFromIP(limit: limit) }
                state.perIP[ip] = count + 1
            }
            state.total += 1
            return nil
        }
    }

    func close(_ address: SocketAddress?) {
        let ip = self.countedIP(address)
        self.state.withLockedValue { state in
            state.total -= 1
            if let ip, let count = state.perIP[ip] {
                state.perIP[ip] = count > 1 ? count - 1 : nil
            }
        }
    }

    /// The address per-IP counts are kept under; formatted and parsed only when a limit needs it.
    private func countedIP(_ address: SocketAddress?) -> IPAddressBytes? {
        self.maxConnectionsPerIP == nil ? nil : address?.ipAddress.flatMap(IPAddressBytes.init)
    }

    /// Takes one handshake token for the address; nil when allowed.
    func takeHandshake(_ address: SocketAddress?, now: NIODeadline = .now()) -> Refusal? {
        guard let rate = self.rate, let ip = address?.ipAddress.flatMap(IPAddressBytes.init) else { return nil }
        let burst = self.burst
        return self.state.withLockedValue { state -> Refusal? in
            var bucket = state.buckets[ip] ?? Bucket(tokens: burst, updated: now)
            let elapsed = Double((now - bucket.updated).nanoseconds) / 1e9
            bucket.tokens = min(burst, bucket.tokens + max(0, elapsed) * rate)
            bucket.updated = now
            guard bucket.tokens >= 1 else {
                state.buckets[ip] = bucket
                return .handshakeRate(retryAfterSeconds: max(1, Int(((1 - bucket.tokens) / rate).rounded(.up))))
            }
            bucket.tokens -= 1
            if state.buckets.count >= Self.maxTrackedBuckets && state.buckets[ip] == nil {
                Self.prune(&state.buckets, now: now, rate: rate, burst: burst)
            }
            state.buckets[ip] = bucket
            return nil
        }
    }

    /// Drops buckets that have refilled (they carry no information); if an attacker keeps every one
    /// of them drained, drops all: a flood from that many addresses is beyond a per-IP limit anyway.
    private static func prune(_ buckets: inout [IPAddressBytes: Bucket], now: NIODeadline, rate: Double, burst: Double) {
        buckets = buckets.filter { _, bucket in
            bucket.tokens + Double((now - bucket.updated).nanoseconds) / 1e9 * rate < burst
        }
        if buckets.count >= Self.maxTrackedBuckets { buckets.removeAll() }
    }
}
