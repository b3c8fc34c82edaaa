import Testing
@testable import WSGate

/// ``SessionQuotas``: places taken at admission, refused or replaced at the limit, given back once.
@Suite struct SessionQuotasTests {
    static let alice = SessionQuotas.Key(route: "/vnc", kind: .user, value: "alice")

    static func ticket(_ decision: SessionQuotas.Decision) -> (QuotaTicket, [UInt64])? {
        if case .admitted(let ticket, let replacing) = decision { return (ticket, replacing) }
        return nil
    }

    @Test func placesUpToTheLimitThenA409() throws {
        let quotas = SessionQuotas()
        let first = try #require(Self.ticket(quotas.admit(Self.alice, limit: 2, onLimit: .reject)))
        let second = try #require(Self.ticket(quotas.admit(Self.alice, limit: 2, onLimit: .reject)))
        guard case .refused(let refusal) = quotas.admit(Self.alice, limit: 2, onLimit: .reject) else {
            Issue.record("a third place was given")
            return
        }
        #expect(refusal.status == .conflict && refusal.label == "session_limit")
        #expect(quotas.count(Self.alice) == 2)
        // Other users and other routes count apart.
        #expect(Self.ticket(quotas.admit(SessionQuotas.Key(route: "/vnc", kind: .user, value: "bob"), limit: 2, onLimit: .reject)) != nil)
        #expect(Self.ticket(quotas.admit(SessionQuotas.Key(route: "/term", kind: .user, value: "alice"), limit: 2, onLimit: .reject)) != nil)
        first.0.release()
        first.0.release()  // once only
        #expect(quotas.count(Self.alice) == 1)
        #expect(Self.ticket(quotas.admit(Self.alice, limit: 2, onLimit: .reject)) != nil)
        _ = second
    }

    @Test func aDroppedTicketGivesItsPlaceBack() {
        let quotas = SessionQuotas()
        do {
            let held = Self.ticket(quotas.admit(Self.alice, limit: 1, onLimit: .reject))
            #expect(held != nil && quotas.count(Self.alice) == 1)
        }
        #expect(quotas.count(Self.alice) == 0, "a handshake that failed after admission holds nothing")
    }

    @Test func replaceOldestHandsBackTheOldestRunningSessions() throws {
        let quotas = SessionQuotas()
        let first = try #require(Self.ticket(quotas.admit(Self.alice, limit: 2, onLimit: .replaceOldest)))
        first.0.attach(sessionID: 11)
        let second = try #require(Self.ticket(quotas.admit(Self.alice, limit: 2, onLimit: .replaceOldest)))
        second.0.attach(sessionID: 12)
        let third = try #require(Self.ticket(quotas.admit(Self.alice, limit: 2, onLimit: .replaceOldest)))
        #expect(third.1 == [11])
        #expect(quotas.count(Self.alice) == 2)
        // The replaced session's own release later changes nothing.
        first.0.release()
        #expect(quotas.count(Self.alice) == 2)
        // A place still connecting (no session yet) cannot be taken over.
        let fourth = try #require(Self.ticket(quotas.admit(Self.alice, limit: 2, onLimit: .replaceOldest)))
        #expect(fourth.1 == [12])
        guard case .refused = quotas.admit(Self.alice, limit: 2, onLimit: .replaceOldest) else {
            Issue.record("replaced a session that was still connecting")
            return
        }
        _ = (third, fourth)
    }
}
