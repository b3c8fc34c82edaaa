/// What the gateway is doing with one HTTP/2 stream, and what each event a client can cause at any
/// moment — DATA, END_STREAM, RST_STREAM, its connection closing — means in that state. nghttp2
/// keeps the protocol's own stream states (RFC 9113 §5.1); this keeps the gateway's: answering a
/// request, opening the backend of an RFC 8441 WebSocket, relaying it, ending a response body.
///
/// Events return what to do; ``HTTP2Stream`` does it. No I/O here, so every transition is a unit
/// test (HTTP2StreamStateTests).
struct HTTP2StreamState: Equatable {
    enum State: Hashable {
        /// A request arrived and is being answered: a refusal, a probe, a static file (looked up,
        /// then its chunks queued). The request's own DATA means nothing.
        case answering
        /// A WebSocket request being admitted and its backend opened: DATA is kept, to be replayed
        /// to the relay. `clientEnded` once the client has sent END_STREAM meanwhile.
        case connecting(clientEnded: Bool)
        /// The relay runs. `ending` once our side was asked to end after what is queued.
        case relaying(ending: Bool)
        /// A response body's last bytes are queued: the stream ends once they have gone.
        case responseEnding
        /// Reset, ended on both sides, or its connection gone. Nothing happens any more.
        case closed
    }

    private(set) var state = State.answering

    var isClosed: Bool { self.state == .closed }

    /// Whether bytes written to the stream are queued. Once our side is ending (or the stream is
    /// gone) they are dropped: nothing may follow END_STREAM.
    var acceptsWrites: Bool {
        switch self.state {
        case .answering, .relaying(ending: false): return true
        case .connecting, .relaying(ending: true), .responseEnding, .closed: return false
        }
    }

    // MARK: Client events

    enum DataAction: Equatable {
        /// Give the bytes to the relay's client leg.
        case deliver
        /// Hold them until the relay starts (bounded by the stream's receive window).
        case keep
        /// Reopen the window for them and drop them: no one reads this stream.
        case discard
    }

    mutating func dataReceived() -> DataAction {
        switch self.state {
        case .relaying: return .deliver
        case .connecting: return .keep
        case .answering, .responseEnding, .closed: return .discard
        }
    }

    enum ClientEndAction: Equatable {
        case none
        /// The client finished its side of a relayed stream: the peer is going away, so our side
        /// ends after what is queued.
        case endRelay
    }

    /// END_STREAM from the client (on HEADERS, DATA or trailers).
    mutating func clientEnded() -> ClientEndAction {
        switch self.state {
        case .connecting:
            self.state = .connecting(clientEnded: true)  // acted on when the relay starts
            return .none
        case .relaying(ending: false):
            self.state = .relaying(ending: true)
            return .endRelay
        case .answering, .relaying(ending: true), .responseEnding, .closed:
            return .none
        }
    }

    enum CloseAction: Equatable {
        case none
        /// Give back the stream's resources: its slot in the limits, a file sender's wait, and
        /// (`endsRelay`) the relay's client leg, which ends its session.
        case release(endsRelay: Bool)
    }

    /// The stream is gone: reset by either side, ended on both, or its connection closed. Once only.
    mutating func closed() -> CloseAction {
        switch self.state {
        case .closed:
            return .none
        case .relaying:
            self.state = .closed
            return .release(endsRelay: true)
        case .answering, .connecting, .responseEnding:
            self.state = .closed
            return .release(endsRelay: false)
        }
    }

    // MARK: Gateway events

    /// A valid WebSocket request: admission and the backend connect follow, and its DATA is kept
    /// from now on. False when the stream is no longer answering: nothing is started for it.
    mutating func upgradeRequested() -> Bool {
        guard case .answering = self.state else { return false }
        self.state = .connecting(clientEnded: false)
        return true
    }

    /// The connect (or its admission) failed or was refused: the stream gets an error response.
    /// False when it is closed: nothing to answer.
    mutating func connectFailed() -> Bool {
        switch self.state {
        case .connecting:
            self.state = .answering
            return true
        case .answering:
            return true
        case .relaying, .responseEnding, .closed:
            return false
        }
    }

    enum RelayStartAction: Equatable {
        /// Answer 200 and start the relay, replaying the DATA kept; with `clientEnded`, the client
        /// already finished its side, so the relay's client side ends after the replay.
        case start(clientEnded: Bool)
        /// The stream went away while the backend was being opened: close the backend.
        case closeBackend
    }

    mutating func backendConnected() -> RelayStartAction {
        switch self.state {
        case .connecting(let clientEnded):
            self.state = .relaying(ending: false)
            return .start(clientEnded: clientEnded)
        case .answering, .relaying, .responseEnding, .closed:
            return .closeBackend
        }
    }

    /// Our side ends once the queued bytes have gone: a whole response body queued, a file's last
    /// chunk, or the relay closing its client side. False when it was ending or closed already.
    mutating func endAfterQueue() -> Bool {
        switch self.state {
        case .answering:
            self.state = .responseEnding
            return true
        case .relaying(ending: false):
            self.state = .relaying(ending: true)
            return true
        case .connecting, .relaying(ending: true), .responseEnding, .closed:
            return false
        }
    }

    /// Whether an empty queue ends the stream (END_STREAM on the last DATA frame).
    var endsWhenQueueEmpty: Bool {
        switch self.state {
        case .relaying(ending: true), .responseEnding: return true
        case .answering, .connecting, .relaying(ending: false), .closed: return false
        }
    }
}
