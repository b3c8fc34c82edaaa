import Testing
@testable import WSGate

/// Every event in every state of ``HTTP2StreamState``: what it returns and where it leaves the
/// stream. The events a client can force at any moment (DATA, END_STREAM, a reset or its
/// connection closing) are checked in each state, including the ones a well-behaved client never
/// causes (DATA after a refusal, a reset while the backend is being opened or a file is sent).
@Suite struct HTTP2StreamStateTests: TransitionTableSuite {
    typealias State = HTTP2StreamState.State

    static let allStates: [State] = [
        .answering, .connecting(clientEnded: false), .connecting(clientEnded: true),
        .relaying(ending: false), .relaying(ending: true), .responseEnding, .closed,
    ]

    /// A machine in `state`, reached through the events that lead there.
    static func machine(in state: State) -> HTTP2StreamState {
        var machine = HTTP2StreamState()
        switch state {
        case .answering:
            break
        case .connecting(let clientEnded):
            _ = machine.upgradeRequested()
            if clientEnded { _ = machine.clientEnded() }
        case .relaying(let ending):
            _ = machine.upgradeRequested()
            _ = machine.backendConnected()
            if ending { _ = machine.endAfterQueue() }
        case .responseEnding:
            _ = machine.endAfterQueue()
        case .closed:
            _ = machine.closed()
        }
        #expect(machine.state == state, "could not reach \(state)")
        return machine
    }


    @Test func newStreamsAreAnswered() {
        #expect(HTTP2StreamState().state == .answering)
    }

    @Test func dataIsDeliveredOnlyWhileRelayingAndKeptWhileConnecting() {
        self.check({ $0.dataReceived() }, [
            .answering: (.discard, .answering),
            .connecting(clientEnded: false): (.keep, .connecting(clientEnded: false)),
            .connecting(clientEnded: true): (.keep, .connecting(clientEnded: true)),  // DATA after END_STREAM: nghttp2 refuses it first
            .relaying(ending: false): (.deliver, .relaying(ending: false)),
            .relaying(ending: true): (.deliver, .relaying(ending: true)),  // the client may still send while our side ends
            .responseEnding: (.discard, .responseEnding),
            .closed: (.discard, .closed),
        ])
    }

    @Test func clientEndingItsSideEndsARelayOrIsRememberedDuringTheConnect() {
        self.check({ $0.clientEnded() }, [
            .answering: (.none, .answering),  // a GET ends its stream with its HEADERS
            .connecting(clientEnded: false): (.none, .connecting(clientEnded: true)),
            .connecting(clientEnded: true): (.none, .connecting(clientEnded: true)),
            .relaying(ending: false): (.endRelay, .relaying(ending: true)),
            .relaying(ending: true): (.none, .relaying(ending: true)),
            .responseEnding: (.none, .responseEnding),
            .closed: (.none, .closed),
        ])
    }

    @Test func closingReleasesOnceAndEndsARelay() {
        self.check({ $0.closed() }, [
            .answering: (.release(endsRelay: false), .closed),  // reset during a file or a lookup
            .connecting(clientEnded: false): (.release(endsRelay: false), .closed),  // reset during the connect
            .connecting(clientEnded: true): (.release(endsRelay: false), .closed),
            .relaying(ending: false): (.release(endsRelay: true), .closed),
            .relaying(ending: true): (.release(endsRelay: true), .closed),
            .responseEnding: (.release(endsRelay: false), .closed),
            .closed: (.none, .closed),
        ])
    }

    @Test func upgradesStartOnlyFromAnswering() {
        self.check({ $0.upgradeRequested() }, [
            .answering: (true, .connecting(clientEnded: false)),
            .connecting(clientEnded: false): (false, .connecting(clientEnded: false)),
            .connecting(clientEnded: true): (false, .connecting(clientEnded: true)),
            .relaying(ending: false): (false, .relaying(ending: false)),
            .relaying(ending: true): (false, .relaying(ending: true)),
            .responseEnding: (false, .responseEnding),
            .closed: (false, .closed),
        ])
    }

    @Test func aFailedConnectIsAnsweredUnlessTheStreamIsGone() {
        self.check({ $0.connectFailed() }, [
            .answering: (true, .answering),  // nothing under way: the stream can still be answered
            .connecting(clientEnded: false): (true, .answering),
            .connecting(clientEnded: true): (true, .answering),
            .relaying(ending: false): (false, .relaying(ending: false)),
            .relaying(ending: true): (false, .relaying(ending: true)),
            .responseEnding: (false, .responseEnding),
            .closed: (false, .closed),
        ])
    }

    @Test func anOpenBackendStartsTheRelayOrIsClosed() {
        self.check({ $0.backendConnected() }, [
            .answering: (.closeBackend, .answering),
            .connecting(clientEnded: false): (.start(clientEnded: false), .relaying(ending: false)),
            .connecting(clientEnded: true): (.start(clientEnded: true), .relaying(ending: false)),
            .relaying(ending: false): (.closeBackend, .relaying(ending: false)),
            .relaying(ending: true): (.closeBackend, .relaying(ending: true)),
            .responseEnding: (.closeBackend, .responseEnding),
            .closed: (.closeBackend, .closed),  // reset while the backend was being opened
        ])
    }

    @Test func endingAfterTheQueueHappensOnce() {
        self.check({ $0.endAfterQueue() }, [
            .answering: (true, .responseEnding),
            .connecting(clientEnded: false): (false, .connecting(clientEnded: false)),
            .connecting(clientEnded: true): (false, .connecting(clientEnded: true)),
            .relaying(ending: false): (true, .relaying(ending: true)),
            .relaying(ending: true): (false, .relaying(ending: true)),
            .responseEnding: (false, .responseEnding),
            .closed: (false, .closed),
        ])
    }

    @Test func writesAreTakenUntilOurSideEnds() {
        let accepting = Self.allStates.filter { Self.machine(in: $0).acceptsWrites }
        #expect(accepting == [.answering, .relaying(ending: false)])
        let ending = Self.allStates.filter { Self.machine(in: $0).endsWhenQueueEmpty }
        #expect(ending == [.relaying(ending: true), .responseEnding])
    }

    /// The sequences a client drives most: a session that ends from either side, a reset in the
    /// middle of the connect, an END_STREAM that arrives before the backend is open.
    @Test func wholeLives() {
        var session = HTTP2StreamState()
        let lived = [
            "\(session.upgradeRequested())", "\(session.dataReceived())", "\(session.backendConnected())", "\(session.dataReceived())",
            "\(session.clientEnded())", "\(session.closed())", "\(session.closed())",
        ]
        #expect(lived == ["true", "keep", "start(clientEnded: false)", "deliver", "endRelay", "release(endsRelay: true)", "none"])

        var reset = HTTP2StreamState()
        let resetLife = ["\(reset.upgradeRequested())", "\(reset.closed())", "\(reset.backendConnected())", "\(reset.connectFailed())"]
        #expect(resetLife == ["true", "release(endsRelay: false)", "closeBackend", "false"])

        var early = HTTP2StreamState()
        let earlyLife = ["\(early.upgradeRequested())", "\(early.clientEnded())", "\(early.backendConnected())", "\(early.clientEnded())"]
        // The END_STREAM kept during the connect is replayed once the relay has the kept DATA.
        #expect(earlyLife == ["true", "none", "start(clientEnded: true)", "endRelay"])

        var file = HTTP2StreamState()
        let before = file.acceptsWrites
        let ended = file.endAfterQueue()
        #expect(before && ended && !file.acceptsWrites && file.endsWhenQueueEmpty)
        let closed = file.closed()
        #expect(closed == .release(endsRelay: false))
    }
}
