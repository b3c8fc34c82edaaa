import Testing
@testable import WSGate

/// Every event in every state of ``WebSocketCloseHandshake``: what it returns and where it leaves
/// the hop, including what peers force at awkward moments (a close crossing ours, a protocol error
/// while our close is out, a close arriving inside a frame to the peer, the connection dropping
/// mid-handshake).
@Suite struct WebSocketCloseHandshakeTests: TransitionTableSuite {
    typealias State = WebSocketCloseHandshake.State

    static let owed = WebSocketCloseCode(4003)
    static let allStates: [State] = [.open, .answerOwed(owed), .closeSent, .exchanged, .closing, .finished]

    static func machine(in state: State) -> WebSocketCloseHandshake {
        Self.machine(in: state, role: .server)
    }

    static func machine(in state: State, role: WebSocketCloseHandshake.Role) -> WebSocketCloseHandshake {
        var machine = WebSocketCloseHandshake(role: role)
        switch state {
        case .open: break
        case .answerOwed(let code): _ = machine.peerClosed(code: code, midFrame: true)
        case .closeSent: _ = machine.partnerClosed(midFrame: false)
        case .exchanged: _ = machine.peerClosed(code: nil, midFrame: false)
        case .closing: _ = machine.failed()
        case .finished: _ = machine.transportClosed()
        }
        #expect(machine.state == state, "could not reach \(state)")
        return machine
    }


    @Test func framesFlowUntilOurCloseAndAreReadUntilTheirs() {
        #expect(Self.allStates.filter { Self.machine(in: $0).sendsToPeer } == [.open])
        // The frame half written when the peer closed is finished before the answer.
        #expect(Self.allStates.filter { Self.machine(in: $0).finishesFrame } == [.open, .answerOwed(Self.owed)])
        #expect(Self.allStates.filter { Self.machine(in: $0).awaitsFrameEnd } == [.answerOwed(Self.owed)])
        #expect(Self.allStates.filter { Self.machine(in: $0).readsFromPeer } == [.open, .closeSent])
    }

    @Test func aCloseFromThePeerIsAnsweredOrCompletesOurs() {
        self.check({ $0.peerClosed(code: .goingAway, midFrame: false) }, [
            .open: (.answerAndPassOn, .exchanged),
            .answerOwed(Self.owed): (.none, .answerOwed(Self.owed)),  // nothing is read after a close
            .closeSent: (.completed, .exchanged),  // the answer to ours, or a close that crossed it
            .exchanged: (.none, .exchanged),
            .closing: (.none, .closing),
            .finished: (.none, .finished),
        ])
    }

    @Test func aCloseInsideAFrameToThePeerIsAnsweredAfterThatFrame() {
        self.check({ $0.peerClosed(code: .goingAway, midFrame: true) }, [
            .open: (.passOnAndAnswerAfterFrame, .answerOwed(.goingAway)),  // the peer's code, kept for the answer
            .answerOwed(Self.owed): (.none, .answerOwed(Self.owed)),
            .closeSent: (.completed, .exchanged),  // the rest of that frame is not owed: our close is out
            .exchanged: (.none, .exchanged),
            .closing: (.none, .closing),
            .finished: (.none, .finished),
        ])
        self.check({ $0.frameFinished() }, [
            .open: (.none, .open),
            .answerOwed(Self.owed): (.answer(Self.owed), .exchanged),
            .closeSent: (.none, .closeSent),
            .exchanged: (.none, .exchanged),
            .closing: (.none, .closing),
            .finished: (.none, .finished),
        ])
    }

    @Test func theOtherLegClosingSendsOursOrDropsMidFrame() {
        self.check({ $0.partnerClosed(midFrame: false) }, [
            .open: (.sendCloseAndWait, .closeSent),
            .answerOwed(Self.owed): (.drop, .closing),  // the rest of the frame the answer waits for will not come
            .closeSent: (.none, .closeSent),
            .exchanged: (.none, .exchanged),
            .closing: (.none, .closing),
            .finished: (.none, .finished),
        ])
        self.check({ $0.partnerClosed(midFrame: true) }, [
            .open: (.drop, .closeSent),
            .answerOwed(Self.owed): (.drop, .closing),
            .closeSent: (.none, .closeSent),
            .exchanged: (.none, .exchanged),
            .closing: (.none, .closing),
            .finished: (.none, .finished),
        ])
    }

    @Test func aFailureEndsTheHopAndSendsACloseOnlyIfNoneWasSent() {
        self.check({ $0.failed() }, [
            .open: (.closeAndPassOn(sendsClose: true), .closing),
            .answerOwed(Self.owed): (.closeAndPassOn(sendsClose: false), .closing),  // no close inside a frame
            .closeSent: (.closeAndPassOn(sendsClose: false), .closing),  // a protocol error while awaiting the answer
            .exchanged: (.none, .exchanged),  // nothing is read any more
            .closing: (.none, .closing),
            .finished: (.none, .finished),
        ])
    }

    @Test func theTransportClosingEndsEveryStateOnce() {
        self.check({ $0.transportClosed() }, [
            .open: (.vanished, .finished),  // no close frame either way: 1006 / 1001 to the other side
            .answerOwed(Self.owed): (.ended, .finished),  // the frame never ended (close_timeout): the other side was told already
            .closeSent: (.ended, .finished),  // our close unanswered (close_timeout, or the peer hung up)
            .exchanged: (.ended, .finished),  // the server closed it (or close_timeout)
            .closing: (.ended, .finished),
            .finished: (.none, .finished),
        ])
    }

    /// RFC 6455 §7.1.1: once the closes are exchanged the server closes the TCP connection; the
    /// client waits for it (the gateway toward its backends). After a failure or a drop, either
    /// side closes at once.
    @Test func theServerClosesTheTransportAndTheClientWaitsForIt() {
        #expect(Self.allStates.filter { !Self.machine(in: $0, role: .server).closesTransport } == [])
        #expect(Self.allStates.filter { !Self.machine(in: $0, role: .client).closesTransport } == [.exchanged])
        var failedClient = WebSocketCloseHandshake(role: .client)
        _ = failedClient.partnerClosed(midFrame: false)
        _ = failedClient.failed()  // a protocol error while awaiting the answer
        #expect(failedClient.state == .closing && failedClient.closesTransport)
    }

    @Test func wholeHandshakes() {
        var started = WebSocketCloseHandshake(role: .server)
        let byPeer = ["\(started.peerClosed(code: nil, midFrame: false))", "\(started.sendsToPeer)", "\(started.readsFromPeer)", "\(started.transportClosed())", "\(started.transportClosed())"]
        #expect(byPeer == ["answerAndPassOn", "false", "false", "ended", "none"])

        var ours = WebSocketCloseHandshake(role: .server)
        let byUs = ["\(ours.partnerClosed(midFrame: false))", "\(ours.readsFromPeer)", "\(ours.peerClosed(code: .normalClosure, midFrame: false))", "\(ours.readsFromPeer)", "\(ours.transportClosed())"]
        #expect(byUs == ["sendCloseAndWait", "true", "completed", "false", "ended"])

        var dropped = WebSocketCloseHandshake(role: .server)
        let vanished = ["\(dropped.transportClosed())", "\(dropped.peerClosed(code: nil, midFrame: false))", "\(dropped.partnerClosed(midFrame: false))", "\(dropped.failed())"]
        #expect(vanished == ["vanished", "none", "none", "none"])

        var midFrame = WebSocketCloseHandshake(role: .server)
        let owed = ["\(midFrame.peerClosed(code: .normalClosure, midFrame: true))", "\(midFrame.readsFromPeer)", "\(midFrame.finishesFrame)",
                    "\(midFrame.frameFinished())", "\(midFrame.finishesFrame)", "\(midFrame.frameFinished())", "\(midFrame.transportClosed())"]
        #expect(owed == ["passOnAndAnswerAfterFrame", "false", "true", "answer(Optional(1000))", "false", "none", "ended"])
    }
}
