/// The closing handshake of one WebSocket hop (RFC 6455 §7.1), as ``WebSocketLeg`` runs it with its
/// peer: a close from the peer is answered at once — or, when it arrives while a frame to the peer
/// is half written, right after that frame's last byte (no frame can go inside another) — and
/// passed to the other leg; a close the other leg asks for is sent and its answer awaited (for
/// `close_timeout`); a protocol error sends its close and ends the hop; the transport closing ends
/// it whatever state it was in. Once both closes have gone, the server side closes the TCP
/// connection and the client side waits for it to (RFC 6455 §7.1.1): the gateway, a client to its
/// backends, leaves the TIME_WAIT state with them instead of holding one port per session.
///
/// Events return what the leg must do; no I/O here (WebSocketCloseHandshakeTests).
struct WebSocketCloseHandshake: Equatable {
    /// This side of the hop: the gateway is the server to its clients and the client to its backends.
    enum Role: Hashable {
        case server
        case client
    }

    enum State: Hashable {
        /// Frames flow both ways.
        case open
        /// The peer's close (with this code) arrived while a frame to it was half written: the rest
        /// of that frame still goes, then the answer; nothing more is read.
        case answerOwed(WebSocketCloseCode?)
        /// Our close is sent (or, inside a half-written frame, the connection is being dropped):
        /// nothing more goes to the peer; its frames are still read until its close arrives.
        case closeSent
        /// Both closes have gone (theirs answered, or ours answered): the server closes the
        /// transport once what is queued has gone, the client waits for the server to close it.
        case exchanged
        /// A failure or a drop ended the hop: the transport closes once what is queued has gone,
        /// whatever the role.
        case closing
        /// The transport is gone.
        case finished
    }

    let role: Role
    private(set) var state = State.open

    init(role: Role) {
        self.role = role
    }

    /// Whether frames may still go to the peer: data, pings, pongs.
    var sendsToPeer: Bool { self.state == .open }

    /// Whether the answer to the peer's close waits for the end of the frame being written to it.
    var awaitsFrameEnd: Bool {
        if case .answerOwed = self.state { return true }
        return false
    }

    /// Whether the payload of the frame being written to the peer may still go: while frames flow,
    /// and while the answer to the peer's close waits for that frame's end.
    var finishesFrame: Bool { self.sendsToPeer || self.awaitsFrameEnd }

    /// Whether the peer's frames are still read.
    var readsFromPeer: Bool { self.state == .open || self.state == .closeSent }

    /// Whether this side closes the transport once what is queued has gone, rather than wait (for
    /// `close_timeout` at most) for the peer to close it: all but a client whose closes were exchanged.
    var closesTransport: Bool {
        switch self.state {
        case .exchanged: return self.role == .server
        case .open, .answerOwed, .closeSent, .closing, .finished: return true
        }
    }

    enum PeerCloseAction: Equatable {
        /// The peer started the handshake: record it, answer with its code, pass it to the other
        /// leg, then close once the answer is out.
        case answerAndPassOn
        /// The peer started the handshake inside a frame to it: record it and pass it to the other
        /// leg, which still owes the rest of that frame; answer when it ends (``frameFinished()``),
        /// or drop the connection after `close_timeout`.
        case passOnAndAnswerAfterFrame
        /// The answer to our own close: this hop is done; close once flushed.
        case completed
        case none
    }

    /// A close frame from the peer, with its code; `midFrame`: a frame to the peer is half written.
    mutating func peerClosed(code: WebSocketCloseCode?, midFrame: Bool) -> PeerCloseAction {
        switch self.state {
        case .open where midFrame:
            self.state = .answerOwed(code)
            return .passOnAndAnswerAfterFrame
        case .open:
            self.state = .exchanged
            return .answerAndPassOn
        case .closeSent:
            self.state = .exchanged
            return .completed
        case .answerOwed, .exchanged, .closing, .finished:
            return .none  // nothing is read after a close
        }
    }

    enum FrameFinishedAction: Equatable {
        /// Send the answer owed to the peer's close, with its code, and close once it is out.
        case answer(WebSocketCloseCode?)
        case none
    }

    /// The frame being written to the peer ended (its last payload byte is written).
    mutating func frameFinished() -> FrameFinishedAction {
        guard case .answerOwed(let code) = self.state else { return .none }
        self.state = .exchanged
        return .answer(code)
    }

    enum PartnerCloseAction: Equatable {
        /// Send a close with the partner's code and wait `close_timeout` for the answer.
        case sendCloseAndWait
        /// A frame to the peer is half written, so no close frame can follow it: drop the connection.
        case drop
        case none
    }

    /// The other leg closed (its peer closed, failed or vanished): this hop closes too.
    mutating func partnerClosed(midFrame: Bool) -> PartnerCloseAction {
        switch self.state {
        case .open:
            self.state = .closeSent
            return midFrame ? .drop : .sendCloseAndWait
        case .answerOwed:
            // The rest of the frame the answer waits for will never come: no close can follow.
            self.state = .closing
            return .drop
        case .closeSent, .exchanged, .closing, .finished:
            return .none
        }
    }

    enum FailureAction: Equatable {
        /// Tell the peer why (a close with the error's code, if a frame can still go), tell the other
        /// leg, and close once flushed.
        case closeAndPassOn(sendsClose: Bool)
        case none
    }

    /// The peer broke the protocol, or this leg failed (compression): the hop ends.
    mutating func failed() -> FailureAction {
        switch self.state {
        case .open:
            self.state = .closing
            return .closeAndPassOn(sendsClose: true)
        case .closeSent, .answerOwed:
            self.state = .closing
            return .closeAndPassOn(sendsClose: false)
        case .exchanged, .closing, .finished:
            return .none
        }
    }

    enum TransportClosedAction: Equatable {
        /// The peer vanished without any close frame: the other leg is told so (1001 or 1011).
        case vanished
        /// The handshake ran, or was cut short: the other leg, if still open, ends normally.
        case ended
        case none
    }

    /// The connection or stream is gone. Once only.
    mutating func transportClosed() -> TransportClosedAction {
        let previous = self.state
        self.state = .finished
        switch previous {
        case .open: return .vanished
        case .answerOwed, .closeSent, .exchanged, .closing: return .ended
        case .finished: return .none
        }
    }
}
