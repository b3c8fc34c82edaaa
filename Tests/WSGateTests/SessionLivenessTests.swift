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
        #expect(liveness.sweep(at: Self.at(60)) == .close(reason: "no pong within 30s", missedPong: true))
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
        #expect(liveness.sweep(at: Self.at(60)) == .close(reason: "no pong within 30s", missedPong: true))
    }

    @Test func idleSessionsCloseWhateverTheClientAnswers() {
        var liveness = Self.liveness(idle: .seconds(100), ping: .seconds(30))
        for second in stride(from: Int64(30), through: 90, by: 30) {
            liveness.pingSent(at: Self.at(second))
            liveness.heardFromClient(at: Self.at(second + 1))  // pongs: alive, but not activity
        }
        #expect(liveness.sweep(at: Self.at(99)) == .none)
        #expect(liveness.sweep(at: Self.at(100)) == .close(reason: "idle timeout", missedPong: false))
        liveness.activity(at: Self.at(100))
        #expect(liveness.sweep(at: Self.at(101)) == .none)
    }

    @Test func eachCheckCanBeOff() {
        #expect(Self.liveness(idle: nil, ping: nil).sweepInterval == nil)
        #expect(Self.liveness(idle: nil, ping: nil).sweep(at: Self.at(1_000_000)) == .none)
        #expect(Self.liveness(idle: nil, ping: .seconds(30)).sweepInterval == .seconds(30))
        #expect(Self.liveness(idle: .seconds(10), ping: .seconds(30)).sweepInterval == .seconds(10))
        let idleOnly = Self.liveness(idle: .seconds(10), ping: nil)
        #expect(idleOnly.sweep(at: Self.at(9)) == .none)
        #expect(idleOnly.sweep(at: Self.at(10)) == .close(reason: "idle timeout", missedPong: false))
        let pingOnly = Self.liveness(idle: nil, ping: .seconds(30))
        #expect(pingOnly.sweep(at: Self.at(1000)) == .ping)
    }
}
