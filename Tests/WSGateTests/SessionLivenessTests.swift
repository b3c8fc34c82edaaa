import NIOCore
import Testing
@testable import WSGate

/// ``SessionLiveness`` on a made-up clock: when a session is pinged, kept, or closed, including what
/// a peer controls (pongs that do or do not come, backend traffic while the client is silent).
@Suite struct SessionLivenessTests {
    static let start = NIODeadline.uptimeNanoseconds(1_000_000_000_000)

    static func at(_ seconds: Int64) -> NIODeadline { start + .seconds(seconds) }

    static func liveness(idle: TimeAmount? = .seconds(100), ping: TimeAmount? = .seconds(30)) -> SessionLiveness {
        SessionLiveness(idleTimeout: idle, pingInterval: ping, now: start)
    }

    @Test func aQuietClientIsPingedThenDroppedIfItStaysSilent() {
        var liveness = Self.liveness()
        #expect(liveness.sweep(at: Self.at(29)) == .none)
        #expect(liveness.sweep(at: Self.at(30)) == .ping)
        liveness.pingSent(at: Self.at(30))
        // One ping at a time: nothing more until the answer is due.
        #expect(liveness.sweep(at: Self.at(45)) == .none)
        #expect(liveness.sweep(at: Self.at(60)) == .close(.missedPong, detail: "no pong within 30s"))
    }

    @Test func aPongKeepsTheClientAndTheNextPingWaitsAFullInterval() {
        var liveness = Self.liveness()
        liveness.pingSent(at: Self.at(30))
        liveness.heardFromClient(at: Self.at(31))  // the pong
        #expect(liveness.sweep(at: Self.at(60)) == .none)
        #expect(liveness.sweep(at: Self.at(61)) == .ping)
    }

    @Test func aPingThatCouldNotGoIsAskedForAgain() {
        let liveness = Self.liveness()
        // The leg was mid-frame and sent nothing: no pingSent, so the next sweep asks again.
        #expect(liveness.sweep(at: Self.at(30)) == .ping)
        #expect(liveness.sweep(at: Self.at(31)) == .ping)
    }

    @Test func backendTrafficDoesNotProveTheClientIsThere() {
        var liveness = Self.liveness()
        liveness.activity(at: Self.at(25))
        #expect(liveness.sweep(at: Self.at(30)) == .ping)
        liveness.pingSent(at: Self.at(30))
        liveness.activity(at: Self.at(50))
        #expect(liveness.sweep(at: Self.at(60)) == .close(.missedPong, detail: "no pong within 30s"))
    }

    @Test func idleSessionsCloseWhateverTheClientAnswers() {
        var liveness = Self.liveness(idle: .seconds(100), ping: .seconds(30))
        for second in stride(from: Int64(30), through: 90, by: 30) {
            liveness.pingSent(at: Self.at(second))
            liveness.heardFromClient(at: Self.at(second + 1))  // pongs: alive, but not activity
        }
        #expect(liveness.sweep(at: Self.at(99)) == .none)
        #expect(liveness.sweep(at: Self.at(100)) == .close(.idleTimeout, detail: "idle timeout"))
        liveness.activity(at: Self.at(100))
        #expect(liveness.sweep(at: Self.at(101)) == .none)
    }

    @Test func eachCheckCanBeOff() {
        #expect(Self.liveness(idle: nil, ping: nil).sweepPeriod(now: Self.start) == nil)
        #expect(Self.liveness(idle: nil, ping: nil).sweep(at: Self.at(1_000_000)) == .none)
        #expect(Self.liveness(idle: nil, ping: .seconds(2)).sweepPeriod(now: Self.start) == .milliseconds(500))
        #expect(Self.liveness(idle: .seconds(1), ping: .seconds(30)).sweepPeriod(now: Self.start) == .milliseconds(250))
        let idleOnly = Self.liveness(idle: .seconds(10), ping: nil)
        #expect(idleOnly.sweep(at: Self.at(9)) == .none)
        #expect(idleOnly.sweep(at: Self.at(10)) == .close(.idleTimeout, detail: "idle timeout"))
        let pingOnly = Self.liveness(idle: nil, ping: .seconds(30))
        #expect(pingOnly.sweep(at: Self.at(1000)) == .ping)
    }

    // MARK: Deadlines

    @Test func theSessionEndsAtItsMaximumDurationWhateverItIsDoing() {
        var liveness = SessionLiveness(idleTimeout: .seconds(100), pingInterval: .seconds(30), maxDuration: .seconds(50), now: Self.start)
        liveness.activity(at: Self.at(49))
        liveness.heardFromClient(at: Self.at(49))
        #expect(liveness.sweep(at: Self.at(49)) == .none)
        #expect(liveness.sweep(at: Self.at(50)) == .close(.maxSessionDuration, detail: "maximum session duration reached"))
        #expect(GatewayCloseReason.maxSessionDuration.code == .goingAway)
    }

    @Test func expiringCredentialsEndTheSessionWith1008AndTheEarlierDeadlineWins() {
        let expiresFirst = SessionLiveness(idleTimeout: nil, pingInterval: nil, maxDuration: .seconds(60), credentialExpiry: Self.at(10), now: Self.start)
        #expect(expiresFirst.sweep(at: Self.at(9)) == .none)
        #expect(expiresFirst.sweep(at: Self.at(10)) == .close(.credentialsExpired, detail: "credentials expired"))
        #expect(GatewayCloseReason.credentialsExpired.code == .policyViolation)
        let lastsFirst = SessionLiveness(idleTimeout: nil, pingInterval: nil, maxDuration: .seconds(5), credentialExpiry: Self.at(10), now: Self.start)
        #expect(lastsFirst.sweep(at: Self.at(5)) == .close(.maxSessionDuration, detail: "maximum session duration reached"))
    }

    @Test func aThrottledClientIsProbedOncePerPingIntervalWithoutAwaitingAPong() {
        var liveness = Self.liveness()
        let probes = [29, 30, 45, 60].map { liveness.probeThrottledClient(at: Self.at($0)) }
        #expect(probes == [false, true, false, true])
        // Heard from all along (its reads go on at the limit's rate): never a missed pong.
        liveness.heardFromClient(at: Self.at(61))
        #expect(liveness.sweep(at: Self.at(80)) == .none)
        var unpinged = Self.liveness(ping: nil)
        let probed = unpinged.probeThrottledClient(at: Self.at(3600))
        #expect(!probed)
    }

    @Test func aDeadlineGoesBeforeAnIdleTimeoutDueAtTheSameSweep() {
        let liveness = SessionLiveness(idleTimeout: .seconds(10), pingInterval: nil, credentialExpiry: Self.at(10), now: Self.start)
        #expect(liveness.sweep(at: Self.at(11)) == .close(.credentialsExpired, detail: "credentials expired"))
    }

    @Test func sweepsComeOftenEnoughForEachCheckAndNoMoreOftenThan50ms() {
        // An eighth of the time left before the deadline, at most a second apart.
        let twoSeconds = SessionLiveness(idleTimeout: nil, pingInterval: nil, maxDuration: .seconds(2), now: Self.start)
        #expect(twoSeconds.sweepPeriod(now: Self.start) == .milliseconds(250))
        let anHour = SessionLiveness(idleTimeout: nil, pingInterval: nil, credentialExpiry: Self.at(3600), now: Self.start)
        #expect(anHour.sweepPeriod(now: Self.start) == .seconds(1))
        let alreadyDue = SessionLiveness(idleTimeout: nil, pingInterval: nil, credentialExpiry: Self.start, now: Self.start)
        #expect(alreadyDue.sweepPeriod(now: Self.start) == .milliseconds(50))
        let revocable = SessionLiveness(idleTimeout: nil, pingInterval: nil, checksCredential: true, now: Self.start)
        #expect(revocable.sweepPeriod(now: Self.start) == .milliseconds(250))
    }

    @Test func everyGatewayReasonHasACodeAPeerMayReceive() {
        for reason in GatewayCloseReason.allCases {
            #expect(reason.code.isValidOnTheWire, "\(reason)")
            #expect(reason.closeFrameReason.utf8.count <= 123, "\(reason)")
        }
    }
}
