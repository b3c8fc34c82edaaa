import NIOCore

/// One client of a held or shared session, on the client's event loop: the client leg's partner
/// in place of a backend leg. What the client sends goes to the hub (if it may write) in one
/// batch per read; what the hub sends comes in batches, each confirmed once written, so the hub
/// sends the next only when the client's connection takes it.
///
/// A member with no hub (an `unavailableReason`) only tells its client why, with 1011.
final class HubMember: RelayPartner {
    private let hub: NIOLoopBound<SessionHub>?
    /// Set when the client's session is installed (after the hub admitted it).
    private var session: RelaySession?
    /// Owners may; viewers as the route says. Set before the client's leg is installed.
    var mayWrite: Bool
    private var clientLeg: WebSocketLeg?
    private var input: [HubInput] = []
    private var inputBytes = 0
    /// Client bytes sent to the hub and not yet taken by the service.
    private var inputInFlight = 0
    /// A delivery written but not yet confirmed (the client's connection was full).
    private var deliveryUnconfirmed = false
    /// Deliveries written to the client (the hub compares it with those it sent).
    private var written = 0
    private var left = false
    /// Why the client gets 1011 at once (a resume that cannot be honoured).
    private let unavailableReason: String?

    init(hub: NIOLoopBound<SessionHub>?, mayWrite: Bool, unavailableReason: String? = nil) {
        self.hub = hub
        self.mayWrite = mayWrite
        self.unavailableReason = unavailableReason
    }

    func attach(session: RelaySession, clientLeg: WebSocketLeg) {
        self.session = session
        self.clientLeg = clientLeg
    }

    /// The hub admitted it but its client could not be answered: it leaves as a vanished client.
    func abandon() {
        self.leave(cleanly: false)
    }

    var id: ObjectIdentifier { ObjectIdentifier(self) }

    /// The front answered the client: output may flow (or, with no hub, the client hears why not).
    func start() {
        guard self.hub != nil else {
            self.clientLeg?.relayClose(code: .internalError, reason: self.unavailableReason ?? "session unavailable")
            return
        }
        let id = self.id
        self.toHub { $0.memberReady(id) }
    }

    /// Every call to the hub is a task on its loop (even when it is this one: no re-entry).
    private func toHub(_ call: @escaping @Sendable (SessionHub) -> Void) {
        guard let hub else { return }
        hub.eventLoop.execute { call(hub.value) }
    }

    // MARK: From the hub

    func deliver(_ entries: [OutputLog.Entry]) {
        guard !self.left, let leg = self.clientLeg else { return }
        var messages = 0
        var bytes = 0
        for entry in entries {
            switch entry {
            case .message(_, let opcode, let length):
                messages += 1
                leg.relayFrame(opcode: opcode, fin: true, length: length)
            case .payload(let payload):
                bytes += payload.readableBytes
                leg.relayPayload(payload)
            }
        }
        leg.relayFlush()
        self.written += 1
        self.session?.count(from: .backend, messages: messages, bytes: bytes)
        self.session?.noteActivity()
        if leg.isWritable {
            self.confirmDelivery()
        } else {
            self.deliveryUnconfirmed = true
        }
    }

    func deliverClose(code: WebSocketCloseCode, reason: String) {
        guard !self.left else { return }
        self.clientLeg?.relayFlush()
        self.clientLeg?.relayClose(code: code, reason: reason)
    }

    /// The service took `bytes` of this client's input: it may send more.
    func inputAccepted(_ bytes: Int) {
        let wasFull = !self.isWritable
        self.inputInFlight -= bytes
        if wasFull, self.isWritable { self.clientLeg?.resumeReading() }
    }

    private func confirmDelivery() {
        let id = self.id
        self.toHub { $0.delivered(id) }
    }

    // MARK: RelayPartner (the client leg's partner)

    func relayFrame(opcode: WebSocketOpcode, fin: Bool, length: Int) {
        guard self.mayWrite, !self.left else { return }
        self.input.append(.frame(opcode: opcode, fin: fin, length: length))
    }

    func relayPayload(_ payload: ByteBuffer) {
        guard self.mayWrite, !self.left else { return }
        self.input.append(.payload(payload))
        self.inputBytes += payload.readableBytes
    }

    func relayMaskedPayload(_ payload: ByteBuffer, mask: WebSocketMask, offset: Int) {
        var clear = payload
        clear.withUnsafeMutableReadableBytesInPlace { mask.apply(to: $0, offset: offset) }
        self.relayPayload(clear)
    }

    func relayFlush() {
        guard !self.input.isEmpty, self.hub != nil else { return }
        let items = self.input
        let bytes = self.inputBytes
        self.input = []
        self.inputBytes = 0
        self.inputInFlight += bytes
        let id = self.id
        self.toHub { $0.input(from: id, items, bytes: bytes) }
    }

    /// The client closed (or was closed) with a close frame: it leaves the session cleanly, unless
    /// it said 1001 Going Away (a page closed or reloaded: it may well come back).
    func relayClose(code: WebSocketCloseCode?, reason: String) {
        self.leave(cleanly: !(self.session?.clientClosedGoingAway ?? false))
    }

    /// The client's connection ended without a close frame, or it stopped answering pings.
    func relayPeerVanished() {
        self.leave(cleanly: false)
    }

    private func leave(cleanly: Bool) {
        guard !self.left else { return }
        // What the client sent before it left still goes.
        self.relayFlush()
        self.left = true
        self.clientLeg = nil
        let id = self.id
        let written = self.written
        self.toHub { $0.memberLeft(id, cleanly: cleanly, written: written) }
        self.session?.legFinished()
    }

    var isWritable: Bool { self.inputInFlight < HubSettings.inputInFlight }

    var awaitsFrameEnd: Bool { false }

    /// The client's connection drained: the delivery it held up is confirmed.
    func resumeReading() {
        guard self.deliveryUnconfirmed else { return }
        self.deliveryUnconfirmed = false
        self.confirmDelivery()
    }
}
