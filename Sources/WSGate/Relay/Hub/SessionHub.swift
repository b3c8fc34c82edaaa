import Logging
import NIOCore

/// One service connection that outlives its client (`resume`) or serves several (`share`). It owns
/// the backend leg and an ``OutputLog`` of what the service sent; each client is a ``HubMember``,
/// a position in that log, on its own event loop. The owner paces the service (the backend is not
/// read while the owner is far behind); a viewer that falls too far behind is dropped.
///
/// Confined to `eventLoop` (the backend's). Every call between a hub and a member is a task on the
/// receiver's loop, even when both share one: no call re-enters the other side.
final class SessionHub: RelayPartner, ByteStreamLegOwner, GoingAway {
    private struct Member {
        let port: NIOLoopBound<HubMember>
        /// The next entry to send, and the first not yet confirmed written.
        var cursor: Int
        var acked: Int
        /// Started by the front (its 101 sent): only then is anything sent to it.
        var ready = false
        var sending = false
        var closeSent = false
        /// Deliveries sent to it: compared with those it wrote when it leaves.
        var deliveries = 0
        /// Its position may be inside a message (the old connection had part of it, or one was
        /// being streamed when it joined): it starts at the next message instead, as a client
        /// cannot be given the rest of a message whose start it never got.
        var seekingMessageStart = true
    }

    let key: HubTable.Key
    /// The owner's resume id: presenting it reattaches the owner (on a shared session, anyone else is a viewer).
    private let resumeID: String?
    let eventLoop: EventLoop
    let logger: Logger
    let settings: HubSettings
    let closeTimeout: TimeAmount
    private let table: HubTable
    private let registry: SessionRegistry
    private let metrics: HubMetrics
    let clientAddress: String
    var route: String { self.key.route }
    private var log: OutputLog
    private var lifecycle: HubLifecycle
    private var members: [ObjectIdentifier: Member] = [:]
    private var owner: ObjectIdentifier?
    var backendLeg: TCPLegHandler?
    /// What members are told once they have everything: the service closed, or the session ended.
    private var closing: (code: WebSocketCloseCode, reason: String)?
    /// The owner's confirmed position when it vanished: a resume without `last` starts there.
    private var heldFrom: Int?
    private var windowTimer: Scheduled<Void>?
    /// The member whose message is being passed to the service, and what is left of its frame.
    private var inputFloor: ObjectIdentifier?
    private var floorRemaining = 0
    private var floorEndsMessage = false
    private var waitingInput: [(member: ObjectIdentifier, items: [HubInput], bytes: Int)] = []
    private var unackedInput: [ObjectIdentifier: Int] = [:]
    private var finished = false
    private let started = NIODeadline.now()

    init(key: HubTable.Key, settings: HubSettings, resumeID: String?, user: String?, clientAddress: String, eventLoop: EventLoop, gateway: GatewayContext) {
        self.key = key
        self.resumeID = resumeID
        self.settings = settings
        self.eventLoop = eventLoop
        self.logger = gateway.logger
        self.closeTimeout = gateway.settings.closeTimeout
        self.table = gateway.hubs
        self.registry = gateway.sessions
        self.metrics = HubMetrics.forRoute(key.route)
        self.clientAddress = clientAddress
        self.log = OutputLog(capacity: settings.capacity)
        self.lifecycle = HubLifecycle(window: settings.window, outlivesOwner: settings.outlivesOwner, maxViewers: settings.maxViewers, user: user)
        gateway.sessions.add(hub: self, on: eventLoop)
    }

    /// Takes over the connected service: its leg reads from now on.
    func start(backend: BackendConnection, route: RouteConfiguration) throws {
        let leg = TCPLegHandler(session: self, route: route)
        leg.partner = self
        self.backendLeg = leg
        try backend.channel.pipeline.syncOperations.addHandler(leg)
        // One read (at most 64 KiB) between checks of the buffer: what is kept never passes its
        // limit by more than that, where a batch of reads could add several.
        try backend.channel.syncOptions?.setOption(ChannelOptions.maxMessagesPerRead, value: 1)
        try? backend.channel.syncOptions?.setOption(ChannelOptions.autoRead, value: true)
    }

    // MARK: Members

    /// The first client (`owner`) or one joining. Answers where its output starts, or why it may not
    /// join; the front then sends its 101 and calls ``memberReady(_:)``.
    enum Admission {
        case owner
        case viewer
        case refused(HubLifecycle.Refusal)
        /// The session is gone or cannot give this client what it missed (1011 after the handshake).
        case unavailable(String)
    }

    func admitOwner(_ port: NIOLoopBound<HubMember>, id: ObjectIdentifier) {
        self.members[id] = Member(port: port, cursor: self.log.endIndex, acked: self.log.endIndex)
        self.owner = id
        self.metrics.members.increment()
    }

    /// A client joining: the owner if it presents the owner's resume id, else a viewer of a shared session.
    func admit(_ port: NIOLoopBound<HubMember>, id: ObjectIdentifier, resumeID: String?, last: UInt64?, user: String?) -> Admission {
        guard !self.finished else { return .unavailable("the session has ended") }
        if let resumeID, resumeID == self.resumeID {
            return self.admitResume(port, id: id, user: user, last: last)
        }
        guard self.settings.viewerLag != nil else { return .unavailable("the session has ended") }
        return self.admitViewer(port, id: id)
    }

    /// A client presenting the resume id as `user`, having received messages up to `last`.
    private func admitResume(_ port: NIOLoopBound<HubMember>, id: ObjectIdentifier, user: String?, last: UInt64?) -> Admission {
        // Another user learns nothing of the session, not even whether it could be resumed.
        if let refusal = self.lifecycle.resumeRefusal(user: user) { return .refused(refusal) }
        var start = self.heldFrom ?? self.owner.flatMap { self.members[$0]?.cursor } ?? self.log.endIndex
        if let last {
            switch self.log.resumePoint(after: last) {
            case .at(let index): start = index
            case .gap(let oldest):
                return .unavailable("messages \(last + 1)-\(oldest - 1) are no longer held (resume.buffer)")
            case .ahead(let latest):
                return .unavailable("the session has sent \(latest) messages, not \(last)")
            }
        }
        guard self.log.isKept(start) else { return .unavailable("output since the client left is no longer held (resume.buffer)") }
        switch self.lifecycle.resume(user: user) {
        case .refuse(let refusal):
            return .refused(refusal)
        case .attach(let replacing):
            // Only once the resume is taken: a refused one leaves the hold (and its timer) as it was.
            self.stopHolding()
            if replacing, let old = self.owner, let member = self.members.removeValue(forKey: old) {
                self.metrics.members.decrement()
                self.send(.close(.goingAway, "session resumed on another connection"), to: member)
            }
        }
        self.members[id] = Member(port: port, cursor: start, acked: start)
        self.owner = id
        self.metrics.members.increment()
        self.metrics.resumed(.resumed)
        // The old owner may have held the service up; this one is measured from where it starts.
        self.readOnIfOwnerCaughtUp()
        return .owner
    }

    private func admitViewer(_ port: NIOLoopBound<HubMember>, id: ObjectIdentifier) -> Admission {
        if let refusal = self.lifecycle.viewerJoins() { return .refused(refusal) }
        let start = self.log.startOfLast(self.settings.replayLast)
        self.members[id] = Member(port: port, cursor: start, acked: start)
        self.metrics.members.increment()
        return .viewer
    }

    /// Its front answered it: output may flow.
    func memberReady(_ id: ObjectIdentifier) {
        guard self.members[id] != nil else { return }
        self.members[id]?.ready = true
        self.pump(id)
    }

    /// Its client left (`cleanly`: a close frame was exchanged) or the front could not answer it.
    /// `written`: the deliveries it wrote to its client (one may have been on its way when it left).
    func memberLeft(_ id: ObjectIdentifier, cleanly: Bool, written: Int) {
        guard let member = self.members.removeValue(forKey: id) else { return }
        self.metrics.members.decrement()
        self.unackedInput.removeValue(forKey: id)
        self.waitingInput.removeAll { $0.member == id }
        var cleanly = cleanly
        if self.inputFloor == id {
            // A message half passed to a framed service cannot be finished by anyone else.
            if self.floorRemaining > 0 || !self.floorEndsMessage, self.settings.framed { cleanly = true }
            self.inputFloor = nil
        }
        defer { self.passWaitingInput() }
        guard !self.finished else { return }
        if id == self.owner {
            self.owner = nil
            // Held while the service is there, or has said things the client has not had yet.
            let worthHolding = self.backendLeg != nil || member.acked < self.log.endIndex
            let mayHold = worthHolding && self.table.takeHeld(route: self.key.route, limit: self.settings.maxHeld)
            let leaving = self.lifecycle.ownerLeft(cleanly: cleanly, at: .now(), mayHold: mayHold)
            if mayHold, !self.lifecycle.isHeld {
                self.table.releaseHeld(route: self.key.route)  // the place taken was not needed
            }
            switch leaving {
            case .hold(let until):
                // A resume without `last` goes on after what was written to the old connection:
                // nothing twice (what was lost in flight is lost; `last` recovers it).
                self.heldFrom = written == member.deliveries ? member.cursor : member.acked
                self.metrics.held.increment()
                self.logger.info("session held for a resume", metadata: ["route": "\(self.key.route)", "client": "\(self.clientAddress)", "until": "\((until - .now()).prettyDescription)"])
                self.windowTimer = self.eventLoop.assumeIsolated().scheduleTask(deadline: until) { [weak self] in self?.windowPassed() }
                self.backendLeg?.resumeReading()
            case .carryOn:
                break
            case .end:
                self.finish(code: .goingAway, reason: self.settings.window == nil ? "the session's owner left" : "client closed the session")
            }
        } else if self.lifecycle.viewerLeft() {
            self.finish(code: .goingAway, reason: "the last member left")
        }
    }

    /// Ends the hold, if there is one (a resume, or the end): its window timer and its place among the
    /// route's held sessions.
    private func stopHolding() {
        guard self.heldFrom != nil else { return }
        self.windowTimer?.cancel()
        self.windowTimer = nil
        self.heldFrom = nil
        self.table.releaseHeld(route: self.key.route)
        self.metrics.held.decrement()
    }

    private func windowPassed() {
        self.windowTimer = nil
        guard self.lifecycle.windowExpired(at: .now()) else { return }
        self.metrics.resumed(.expired)
        self.logger.info("held session ended: no resume within the window", metadata: ["route": "\(self.key.route)", "client": "\(self.clientAddress)"])
        self.finish(code: .goingAway, reason: "no resume within the window")
    }

    // MARK: Output to members

    private enum Delivery {
        case entries([OutputLog.Entry])
        case close(WebSocketCloseCode, String)
    }

    private func pumpAll() {
        for id in self.members.keys { self.pump(id) }
    }

    /// Sends a member its next batch, one at a time: the next goes when it confirms this one. Once
    /// it has everything and the session is closing, it gets the close.
    private func pump(_ id: ObjectIdentifier) {
        guard var member = self.members[id], member.ready, !member.sending, !member.closeSent else { return }
        if member.seekingMessageStart {
            // Skips to the next header; until one comes the position stays at the end.
            member.cursor = self.log.messageStart(atOrAfter: member.cursor)
            member.acked = member.cursor
            member.seekingMessageStart = member.cursor == self.log.endIndex
            self.members[id] = member
            if id == self.owner { self.readOnIfOwnerCaughtUp() }
        } else if !self.log.isKept(member.cursor) {
            self.dropSlow(id)
            return
        }
        let (entries, next) = self.log.read(from: member.cursor, maxBytes: HubSettings.batchBytes)
        guard !entries.isEmpty else {
            if let closing = self.closing { self.sendClose(to: id, code: closing.code, reason: closing.reason) }
            return
        }
        member.cursor = next
        member.sending = true
        member.deliveries += 1
        self.members[id] = member
        self.send(.entries(entries), to: member)
    }

    /// The member's last delivery: nothing is sent to it after this.
    private func sendClose(to id: ObjectIdentifier, code: WebSocketCloseCode, reason: String) {
        guard var member = self.members[id] else { return }
        member.closeSent = true
        self.members[id] = member
        self.send(.close(code, reason), to: member)
    }

    private func send(_ delivery: Delivery, to member: Member) {
        let port = member.port
        switch delivery {
        case .entries(let entries):
            port.eventLoop.execute { port.value.deliver(entries) }
        case .close(let code, let reason):
            port.eventLoop.execute { port.value.deliverClose(code: code, reason: reason) }
        }
    }

    /// The member wrote its batch to its client.
    func delivered(_ id: ObjectIdentifier) {
        guard var member = self.members[id] else { return }
        member.sending = false
        member.acked = member.cursor
        self.members[id] = member
        self.readOnIfOwnerCaughtUp()
        self.trimLog(checkingViewers: false)
        self.pump(id)
    }

    /// The service's reads wait while the owner is far behind; whatever brings the owner closer (a
    /// confirmed delivery, a new owner, a skip to the next message) lets them go on.
    private func readOnIfOwnerCaughtUp() {
        guard let owner = self.owner, let member = self.members[owner], self.log.bytesBehind(member.acked) < self.settings.ownerHighWater else { return }
        self.backendLeg?.resumeReading()
    }

    private func dropSlow(_ id: ObjectIdentifier) {
        guard let member = self.members[id] else { return }
        self.metrics.droppedSlow.increment()
        self.logger.info("dropping a shared session's member that fell behind", metadata: ["route": "\(self.key.route)", "behind_bytes": "\(self.log.bytesBehind(member.acked))"])
        self.sendClose(to: id, code: .policyViolation, reason: "too slow")
    }

    /// Old output goes; a held session whose output no longer fits ends; viewers too far behind go
    /// (looked at when output arrives: an acknowledgement only ever brings a member closer).
    private func trimLog(checkingViewers: Bool = true) {
        let protected = self.owner.flatMap { self.members[$0]?.acked } ?? self.heldFrom
        if !self.log.trim(protecting: protected), self.lifecycle.overflowed() {
            self.metrics.resumed(.overflowed)
            self.logger.info("held session ended: the service sent more than resume.buffer while the client was away",
                             metadata: ["route": "\(self.key.route)", "client": "\(self.clientAddress)", "buffer": "\(self.settings.capacity)"])
            self.finish(code: .internalError, reason: "session output overflowed the resume buffer", tombstone: "the service sent more than the resume buffer holds while the client was away")
            self.log.removeAll()
            return
        }
        guard checkingViewers, let limit = self.settings.viewerLag else { return }
        for (id, member) in self.members where id != self.owner && !member.closeSent {
            if !self.log.isKept(member.cursor) || self.log.bytesBehind(member.acked) > limit {
                self.dropSlow(id)
            }
        }
    }

    // MARK: Input from members

    /// A read batch of a member's client messages (only members that may write send them).
    func input(from id: ObjectIdentifier, _ items: [HubInput], bytes: Int) {
        guard self.members[id] != nil, !self.finished else { return }
        if let floor = self.inputFloor, floor != id {
            self.waitingInput.append((id, items, bytes))
            return
        }
        self.pass(items, from: id, bytes: bytes)
        self.passWaitingInput()
    }

    private func pass(_ items: [HubInput], from id: ObjectIdentifier, bytes: Int) {
        guard let leg = self.backendLeg else { return }
        for item in items {
            switch item {
            case .frame(let opcode, let fin, let length):
                self.inputFloor = id
                self.floorRemaining = length
                self.floorEndsMessage = fin
                leg.relayFrame(opcode: opcode, fin: fin, length: length)
            case .payload(let payload):
                self.floorRemaining -= payload.readableBytes
                leg.relayPayload(payload)
            }
            if self.floorRemaining <= 0, self.floorEndsMessage { self.inputFloor = nil }
        }
        leg.relayFlush()
        if leg.isWritable {
            self.acknowledgeInput(id, bytes)
        } else {
            self.unackedInput[id, default: 0] += bytes
        }
    }

    /// Batches held back while another member's message was passing, in arrival order.
    private func passWaitingInput() {
        while let next = self.waitingInput.first, self.inputFloor == nil || self.inputFloor == next.member {
            self.waitingInput.removeFirst()
            self.pass(next.items, from: next.member, bytes: next.bytes)
        }
    }

    private func acknowledgeInput(_ id: ObjectIdentifier, _ bytes: Int) {
        guard bytes > 0, let port = self.members[id]?.port else { return }
        port.eventLoop.execute { port.value.inputAccepted(bytes) }
    }

    // MARK: Ending

    /// Ends the session: the service's connection closes, members get `code` once they have what
    /// was sent. `tombstone`: what a later attempt with the same id is told (for the window).
    private func finish(code: WebSocketCloseCode, reason: String, tombstone: String? = nil) {
        guard !self.finished else { return }
        self.finished = true
        self.lifecycle.end()
        self.stopHolding()
        self.table.remove(self.key, hub: ObjectIdentifier(self), tombstone: tombstone, for: self.settings.window ?? .zero)
        if self.closing == nil { self.closing = (code, reason) }
        self.backendLeg?.relayClose(code: .goingAway, reason: reason)
        self.pumpAll()
        self.registry.remove(self)
    }

    func goAway(reason: String) {
        self.closing = (.goingAway, reason)
        self.finish(code: .goingAway, reason: reason)
    }

    /// What the admin API lists (never the id: it is the client's secret).
    func snapshot(now: NIODeadline = .now()) -> HubSnapshot {
        var expiresIn: TimeAmount?
        if case .held(let until) = self.lifecycle.state { expiresIn = until - now }
        let kind = [self.settings.window != nil ? "resume" : nil, self.settings.viewerLag != nil ? "share" : nil].compactMap { $0 }.joined(separator: "+")
        return HubSnapshot(route: self.key.route, kind: kind, user: self.lifecycle.user,
                           state: self.finished ? "ended" : self.lifecycle.isHeld ? "held" : "live", members: self.members.count,
                           bufferedBytes: self.log.keptBytes, bufferLimit: self.settings.capacity, messagesOut: self.log.latestSequence,
                           age: now - self.started, expiresIn: expiresIn)
    }

    // MARK: RelayPartner (the backend leg's partner)

    func relayFrame(opcode: WebSocketOpcode, fin: Bool, length: Int) {
        self.log.appendMessage(opcode: opcode, length: length)
    }

    func relayPayload(_ payload: ByteBuffer) {
        self.log.appendPayload(payload)
    }

    func relayMaskedPayload(_ payload: ByteBuffer, mask: WebSocketMask, offset: Int) {
        var clear = payload
        clear.withUnsafeMutableReadableBytesInPlace { mask.apply(to: $0, offset: offset) }
        self.log.appendPayload(clear)
    }

    func relayFlush() {
        self.trimLog()
        self.pumpAll()
    }

    /// The service closed (or broke a framing rule): members get the rest, then `code`. A held
    /// session stays held: a resume still collects what the service said last.
    func relayClose(code: WebSocketCloseCode?, reason: String) {
        self.serviceEnded(code: code ?? .normalClosure, reason: reason)
    }

    /// The service is done (its close, or its connection gone): with no one to tell and nothing
    /// held, the session ends; otherwise members get `code` after what they have not had yet.
    private func serviceEnded(code: WebSocketCloseCode, reason: String) {
        if self.closing == nil { self.closing = (code, reason) }
        if !self.lifecycle.isHeld, self.members.isEmpty, let closing = self.closing {
            self.finish(code: closing.code, reason: closing.reason)
        }
        self.pumpAll()
    }

    /// Read the service only while the owner keeps up (a held or ownerless session reads on, up to its buffer).
    var isWritable: Bool {
        guard let owner = self.owner, let member = self.members[owner] else { return true }
        return self.log.bytesBehind(member.acked) < self.settings.ownerHighWater
    }

    var awaitsFrameEnd: Bool { false }

    /// The service's connection drained: client bytes waiting on it are confirmed.
    func resumeReading() {
        let unacked = self.unackedInput
        self.unackedInput = [:]
        for (id, bytes) in unacked { self.acknowledgeInput(id, bytes) }
    }

    // MARK: ByteStreamLegOwner

    /// Each member counts what it delivers to its client (its own session's bytes and messages).
    func count(from side: RelaySession.Side, messages: Int, bytes: Int) {}

    func noteActivity(at now: NIODeadline) {}

    /// The service's connection closed.
    func legFinished() {
        self.backendLeg = nil
        self.serviceEnded(code: .internalError, reason: "backend connection lost")
    }
}
