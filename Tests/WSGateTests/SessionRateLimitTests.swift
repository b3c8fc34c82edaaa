import NIOCore
import Testing
@testable import WSGate

/// ``SessionRateLimit`` on a made-up clock: what a client may send, when its reads pause, and how
/// long each pause lasts.
@Suite struct SessionRateLimitTests {
    static let start = NIODeadline.uptimeNanoseconds(1_000_000_000_000)

    static func at(milliseconds: Int64) -> NIODeadline { start + .milliseconds(milliseconds) }

    /// Waits are rounded up to the nanosecond.
    static func about(_ wait: TimeAmount, _ expected: TimeAmount) -> Bool {
        abs(wait.nanoseconds - expected.nanoseconds) <= 1
    }

    static func limit(messages: Int? = nil, bytes: Int? = nil) throws -> SessionRateLimit {
        try #require(SessionRateLimit(rates: .init(messagesPerSecond: messages, bytesPerSecond: bytes), now: start))
    }

    @Test func noRatesNoLimit() {
        #expect(SessionRateLimit(rates: .init(), now: Self.start) == nil)
    }

    @Test func oneSecondsWorthOfMessagesThenAPauseUntilTheNextToken() throws {
        var limit = try Self.limit(messages: 50)
        for _ in 0..<50 {
            #expect(limit.allows(atFrameStart: true))
            limit.messageArrived()
        }
        #expect(!limit.allows(atFrameStart: true))
        // One token is earned in 1/50 s.
        let wait1 = limit.pause(atFrameStart: true)
        #expect(Self.about(wait1, .milliseconds(20)))
        #expect(limit.isPaused)
        let step2 = limit.resume(at: Self.at(milliseconds: 19), atFrameStart: true)
        #expect(!step2)
        #expect(limit.isPaused)
        let step3 = limit.resume(at: Self.at(milliseconds: 20), atFrameStart: true)
        #expect(step3)
        #expect(!limit.isPaused)
        limit.messageArrived()
        #expect(!limit.allows(atFrameStart: true))
    }

    @Test func theMessageBudgetNeverStopsAMessageInTheMiddle() throws {
        var limit = try Self.limit(messages: 1)
        limit.messageArrived()
        #expect(!limit.allows(atFrameStart: true))
        // The frame whose header took the last token still delivers its payload.
        #expect(limit.allows(atFrameStart: false))
    }

    @Test func theBucketHoldsNoMoreThanOneSecond() throws {
        var limit = try Self.limit(messages: 10)
        for _ in 0..<10 { limit.messageArrived() }
        limit.refill(at: Self.at(milliseconds: 60_000))
        for _ in 0..<10 {
            #expect(limit.allows(atFrameStart: true))
            limit.messageArrived()
        }
        #expect(!limit.allows(atFrameStart: true))
    }

    @Test func theDecoderIsShownNoMoreBytesThanTheBudget() throws {
        var limit = try Self.limit(bytes: 1000)
        #expect(limit.byteAllowance == 1000)
        limit.payloadArrived(600)
        #expect(limit.byteAllowance == 400)
        limit.payloadArrived(400)
        #expect(limit.byteAllowance == 0)
        #expect(!limit.allows(atFrameStart: false))
        #expect(!limit.allows(atFrameStart: true))
        // A byte is earned in a millisecond; the shortest pause is longer.
        #expect(limit.pause(atFrameStart: false) == SessionRateLimit.shortestPause)
        let step4 = limit.resume(at: Self.at(milliseconds: 10), atFrameStart: false)
        #expect(step4)
        #expect(limit.byteAllowance == 10)
    }

    @Test func aSlowByteRateWaitsForWhatIsOwedAndNoMore() throws {
        var limit = try Self.limit(bytes: 4)
        limit.payloadArrived(4)
        // A byte's worth of time: a long pause would starve the client's pongs.
        let wait5 = limit.pause(atFrameStart: false)
        #expect(Self.about(wait5, .milliseconds(250)))
        let step6 = limit.resume(at: Self.at(milliseconds: 249), atFrameStart: false)
        #expect(!step6)
        let step7 = limit.resume(at: Self.at(milliseconds: 250), atFrameStart: false)
        #expect(step7)
        #expect(limit.byteAllowance == 1)
    }

    @Test func bothBudgetsMustAllowAFrame() throws {
        var limit = try Self.limit(messages: 100, bytes: 100)
        limit.payloadArrived(100)
        #expect(!limit.allows(atFrameStart: true))
        // The longer of the two waits.
        limit.messageArrived()
        let wait8 = limit.pause(atFrameStart: true)
        #expect(Self.about(wait8, .milliseconds(10)))
        var messages = try Self.limit(messages: 10, bytes: 1_000_000)
        for _ in 0..<10 { messages.messageArrived() }
        let wait9 = messages.pause(atFrameStart: true)
        #expect(Self.about(wait9, .milliseconds(100)))
    }
}
