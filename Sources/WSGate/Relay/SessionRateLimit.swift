import NIOCore

/// A route's `limits.messages_per_second` and `limits.bytes_per_second`, on what one client sends:
/// two token buckets, each holding one second's worth. Applied by pausing reads, never by
/// buffering: when a bucket is empty the client leg stops decoding, keeps the rest of the read it
/// was in (one read at most), stops reading its socket or withholds HTTP/2 WINDOW_UPDATEs, and asks
/// again after ``pause(atFrameStart:)``'s wait. The client's own TCP or HTTP/2 flow control does the rest.
///
/// A message is charged at its final frame's header and checked between frames only (a message's
/// payload never waits on the message budget). Payload bytes are charged as they are decoded, and
/// the decoder is shown no more of a read than ``byteAllowance`` covers, so the byte budget is
/// never overspent and no wait is longer than a byte's or a message's worth of time (a long wait
/// would starve the client's pongs and read as a dead client).
struct SessionRateLimit {
    struct Rates: Sendable, Equatable {
        var messagesPerSecond: Int?
        var bytesPerSecond: Int?

        var isLimited: Bool { self.messagesPerSecond != nil || self.bytesPerSecond != nil }
    }

    /// The shortest wait: a fast rate refills in fewer, larger steps than one per message.
    static let shortestPause: TimeAmount = .milliseconds(10)

    let rates: Rates
    private var messageTokens: Double
    private var byteTokens: Double
    private var refilledAt: NIODeadline
    /// Reads stopped until the wait from ``pause(atFrameStart:)`` is over and ``resume(at:atFrameStart:)`` agrees.
    private(set) var isPaused = false

    /// Nil when `rates` limits nothing. Starts with full buckets: a session may send one second's
    /// worth at once.
    init?(rates: Rates, now: NIODeadline) {
        guard rates.isLimited else { return nil }
        self.rates = rates
        self.messageTokens = Double(rates.messagesPerSecond ?? 0)
        self.byteTokens = Double(rates.bytesPerSecond ?? 0)
        self.refilledAt = now
    }

    /// Adds what the time since the last refill earned, up to one second's worth.
    mutating func refill(at now: NIODeadline) {
        let elapsed = Double((now - self.refilledAt).nanoseconds) / 1e9
        guard elapsed > 0 else { return }
        self.refilledAt = now
        if let rate = self.rates.messagesPerSecond {
            self.messageTokens = min(Double(rate), self.messageTokens + elapsed * Double(rate))
        }
        if let rate = self.rates.bytesPerSecond {
            self.byteTokens = min(Double(rate), self.byteTokens + elapsed * Double(rate))
        }
    }

    /// Whether the next frame may be decoded: a whole message's token is left, and bytes are.
    var allowsFrame: Bool {
        (self.rates.messagesPerSecond == nil || self.messageTokens >= 1) && self.allowsPayload
    }

    /// Whether more of the current frame's payload may be decoded.
    var allowsPayload: Bool {
        self.rates.bytesPerSecond == nil || self.byteTokens >= 1
    }

    /// How many more bytes the decoder may see (headers included, though only payload is charged);
    /// nil: bytes are not limited.
    var byteAllowance: Int? {
        guard self.rates.bytesPerSecond != nil else { return nil }
        return max(0, Int(self.byteTokens.rounded(.down)))
    }

    /// A message's final frame header was decoded.
    mutating func messageArrived() {
        if self.rates.messagesPerSecond != nil { self.messageTokens -= 1 }
    }

    /// Payload was decoded.
    mutating func payloadArrived(_ count: Int) {
        if self.rates.bytesPerSecond != nil { self.byteTokens -= Double(count) }
    }

    /// Whether decoding may go on: between frames a frame must be allowed, inside one its payload.
    func allows(atFrameStart: Bool) -> Bool {
        atFrameStart ? self.allowsFrame : self.allowsPayload
    }

    /// Stops reads; returns how long until the buckets hold what comes next needs (a message's
    /// token between frames, a byte), at least ``shortestPause``.
    mutating func pause(atFrameStart: Bool) -> TimeAmount {
        self.isPaused = true
        var seconds = 0.0
        if atFrameStart, let rate = self.rates.messagesPerSecond, self.messageTokens < 1 {
            seconds = max(seconds, (1 - self.messageTokens) / Double(rate))
        }
        if let rate = self.rates.bytesPerSecond, self.byteTokens < 1 {
            seconds = max(seconds, (1 - self.byteTokens) / Double(rate))
        }
        // Rounded up: a timer that fires a little early would find the bucket a little short.
        return max(Self.shortestPause, .nanoseconds(Int64((min(seconds, 3600) * 1e9).rounded(.up))))
    }

    /// The wait is over: true when decoding may go on (reads resume), false when the buckets are
    /// still short (the caller pauses again, as when the clock moved less than asked).
    mutating func resume(at now: NIODeadline, atFrameStart: Bool) -> Bool {
        self.refill(at: now)
        guard self.allows(atFrameStart: atFrameStart) else { return false }
        self.isPaused = false
        return true
    }
}
