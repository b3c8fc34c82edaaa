import Testing
@testable import WSGate

/// Every event in every state of ``WebSocketCloseHandshake``: what it returns and where it leaves
/// the hop, including what peers force at awkward moments (a close crossing ours, a protocol error
/// while our close is out, the connection dropping mid-handshake).
@Suite struct WebSocketCloseHandshakeTests: TransitionTableSuite {
    typealias State = WebSocketCloseHandshake.State

    static let allStates: [State] = [.open, .closeSent, .closing, .finished]

    static func machine(in state: State) -> WebSocketCloseHandshake {
        var machine = WebSocketCloseHandshake()
        switch state {
        case .open: break
        case .closeSent: _ = machine.partnerClosed(midFrame: false)
        case .closing: _ = machine.peerClosed()
        case .finished: _ = machine.transportClosed()
        }
        #expect(machine.state == state, "could not reach \(state)")
        return machine
    }


    @Test func framesFlowUntilOurCloseAndAreReadUntilTheirs() {
        #expect(Self.allStates.filter { Self.machine(in: $0).sendsToPeer } == [.open])
        #expect(Self.allStates.filter { Self.machine(in: $0).readsFromPeer } == [.open, .closeSent])
    }

    @Test func aCloseFromThePeerIsAnsweredOrCompletesOurs() {
        self.check({ $0.peerClosed() }, [
            .open: (.answerAndPassOn, .closing),
            .closeSent: (.completed, .closing),  // the answer to ours, or a close that crossed it
            .closing: (.none, .closing),
            .finished: (.none, .finished),
        ])
    }

    @Test func theOtherLegClosingSendsOursOrDropsMidFrame() {
        self.check({ $0.partnerClosed(midFrame: false) }, [
            .open: (.sendCloseAndWait, .closeSent),
            .closeSent: (.none, .closeSent),
            .closing: (.none, .closing),
            .finished: (.none, .finished),
        ])
        self.check({ $0.partnerClosed(midFrame: true) }, [
            .open: (.drop, .closeSent),
            .closeSent: (.none, .closeSent),
            .closing: (.none, .closing),
            .finished: (.none, .finished),
        ])
    }

    @Test func aFailureEndsTheHopAndSendsACloseOnlyIfNoneWasSent() {
        self.check({ $0.failed() }, [
            .open: (.closeAndPassOn(sendsClose: true), .closing),
            .closeSent: (.closeAndPassOn(sendsClose: false), .closing),  // a protocol error while awaiting the answer
            .closing: (.none, .closing),
            .finished: (.none, .finished),
        ])
    }

    @Test func theTransportClosingEndsEveryStateOnce() {
        self.check({ $0.transportClosed() }, [
            .open: (.vanished, .finished),  // no close frame either way: 1006 / 1001 to the other side
            .closeSent: (.ended, .finished),  // our close unanswered (close_timeout, or the peer hung up)
            .closing: (.ended, .finished),
            .finished: (.none, .finished),
        ])
    }

    @Test func wholeHandshakes() {
        var started = WebSocketCloseHandshake()
        let byPeer = ["\(started.peerClosed())", "\(started.sendsToPeer)", "\(started.readsFromPeer)", "\(started.transportClosed())", "\(started.transportClosed())"]
        #expect(byPeer == ["answerAndPassOn", "false", "false", "ended", "none"])

        var ours = WebSocketCloseHandshake()
        let byUs = ["\(ours.partnerClosed(midFrame: false))", "\(ours.readsFromPeer)", "\(ours.peerClosed())", "\(ours.readsFromPeer)", "\(ours.transportClosed())"]
        #expect(byUs == ["sendCloseAndWait", "true", "completed", "false", "ended"])

        var dropped = WebSocketCloseHandshake()
        let vanished = ["\(dropped.transportClosed())", "\(dropped.peerClosed())", "\(dropped.partnerClosed(midFrame: false))", "\(dropped.failed())"]
        #expect(vanished == ["vanished", "none", "none", "none"])
    }
}
