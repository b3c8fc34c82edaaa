import NIOCore

/// Who is attached to a held or shared session and when it ends, decided on the events its
/// clients drive: the owner leaving (with or without a close frame), a resume, a viewer joining or
/// leaving, the resume window running out, the held output overflowing. A value type with no I/O:
/// ``SessionHub`` applies its answers.
struct HubLifecycle {
    enum State: Equatable {
        /// The owner is attached (or, on a shared session that outlives its owner, was).
        case live
        /// The owner vanished without a close frame; it may resume until `until`.
        case held(until: NIODeadline)
        case ended
    }

    enum OwnerLeaving: Equatable {
        /// Keep the service's connection for a resume.
        case hold(until: NIODeadline)
        /// The session goes on without an owner (shared, `ends: last_member`, viewers left).
        case carryOn
        case end
    }

    enum Refusal: Equatable {
        /// A resume by a user other than the one who opened the session.
        case otherUser
        case full
        case ended
    }

    enum Resume: Equatable {
        /// The resuming client becomes the owner; `replacing`: an owner still attached (its old
        /// connection not yet known to be dead) is closed first.
        case attach(replacing: Bool)
        case refuse(Refusal)
    }

    /// `resume.window`; nil on a route without resume.
    let window: TimeAmount?
    /// Shared sessions: whether the session outlives its owner while viewers remain.
    let outlivesOwner: Bool
    let maxViewers: Int
    /// Who opened it (nil on a route without auth): only they may resume it.
    let user: String?
    private(set) var state = State.live
    private(set) var ownerAttached = true
    private(set) var viewers = 0

    init(window: TimeAmount?, outlivesOwner: Bool = false, maxViewers: Int = 0, user: String?) {
        self.window = window
        self.outlivesOwner = outlivesOwner
        self.maxViewers = maxViewers
        self.user = user
    }

    var isHeld: Bool {
        if case .held = self.state { return true }
        return false
    }

    /// The owner's connection ended: `cleanly` when it sent (or was sent) a close frame. `mayHold`:
    /// the route's held-session limit leaves room.
    mutating func ownerLeft(cleanly: Bool, at now: NIODeadline, mayHold: Bool) -> OwnerLeaving {
        guard self.state == .live, self.ownerAttached else { return self.state == .ended ? .end : .carryOn }
        self.ownerAttached = false
        if !cleanly, let window = self.window, mayHold {
            self.state = .held(until: now + window)
            return .hold(until: now + window)
        }
        if self.outlivesOwner, self.viewers > 0 { return .carryOn }
        self.state = .ended
        return .end
    }

    /// Why a client presenting the session's resume id as `user` may not resume it, if it may not.
    func resumeRefusal(user: String?) -> Refusal? {
        guard self.window != nil, self.state != .ended else { return .ended }
        guard user == self.user else { return .otherUser }
        return nil
    }

    /// A client presenting the session's resume id, as `user`.
    mutating func resume(user: String?) -> Resume {
        if let refusal = self.resumeRefusal(user: user) { return .refuse(refusal) }
        let replacing = self.state == .live && self.ownerAttached
        self.state = .live
        self.ownerAttached = true
        return .attach(replacing: replacing)
    }

    mutating func viewerJoins() -> Refusal? {
        guard self.state != .ended else { return .ended }
        guard self.viewers < self.maxViewers else { return .full }
        self.viewers += 1
        return nil
    }

    /// Whether the session ends with this viewer (the last member of one that outlived its owner).
    mutating func viewerLeft() -> Bool {
        self.viewers = max(0, self.viewers - 1)
        guard self.state == .live, !self.ownerAttached, self.viewers == 0 else { return false }
        self.state = .ended
        return true
    }

    /// Whether the session ends now (its window passed with no resume).
    mutating func windowExpired(at now: NIODeadline) -> Bool {
        guard case .held(let until) = self.state, now >= until else { return false }
        self.state = .ended
        return true
    }

    /// The service sent more than the buffer holds while no one read it: whether the session ends
    /// (it does when held; an attached owner is paced instead).
    mutating func overflowed() -> Bool {
        guard self.isHeld else { return false }
        self.state = .ended
        return true
    }

    /// Ended for any other reason: the service left with no one to tell, shutdown, an operator.
    mutating func end() {
        self.state = .ended
    }
}
