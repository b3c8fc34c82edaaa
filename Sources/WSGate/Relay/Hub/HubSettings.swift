import NIOCore

/// What a hub settles from its route: how much it keeps, who may write, how long it holds.
struct HubSettings: Sendable {
    /// `resume.window`; nil on a route without resume.
    var window: TimeAmount?
    /// Payload bytes of the service's output kept (the larger of `resume.buffer` and `share.queue`).
    var capacity: Int
    /// How far a viewer may fall behind before it is dropped; nil: no viewers.
    var viewerLag: Int?
    var viewersMayWrite = false
    var maxViewers = 0
    var replayLast = 0
    var outlivesOwner = false
    /// Length prefixes or lines: a message cut by a leaving writer would corrupt the service's stream.
    var framed = false
    var maxHeld = 0

    /// The owner's lag at which the service stops being read (its output is paced by the owner).
    var ownerHighWater: Int { min(256 * 1024, self.capacity / 2) }
    /// Most payload bytes handed to one member per delivery.
    static let batchBytes = 64 * 1024
    /// Most client bytes on their way to the service per member before its client leg stops reading.
    static let inputInFlight = 256 * 1024

    init?(route: RouteConfiguration) {
        guard route.resume != nil || route.share != nil else { return nil }
        self.capacity = 0
        if let resume = route.resume {
            self.window = resume.window
            self.capacity = resume.buffer
        }
        if let share = route.share {
            self.capacity = max(self.capacity, share.queue)
            self.viewerLag = share.queue
            self.viewersMayWrite = share.viewers == .all
            self.maxViewers = share.maxViewers
            self.replayLast = share.replayLast
            self.outlivesOwner = share.ends == .lastMember
        }
        if case .raw = route.framing {} else { self.framed = true }
        self.maxHeld = route.limits.maxHeldSessions
    }
}
