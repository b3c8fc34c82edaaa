import Logging
import NIOCore

/// What one leg of a session asks of the other. Both legs run on the same event loop, so these are
/// plain synchronous calls: no locks, no hops, and the payload slices pass through uncopied.
protocol RelayPartner: AnyObject {
    /// A data frame from the other side begins; `length` bytes follow through ``relayPayload(_:)``.
    /// A byte-stream leg ignores frame boundaries.
    func relayFrame(opcode: WebSocketOpcode, fin: Bool, length: Int)
    func relayPayload(_ payload: ByteBuffer)
    /// Payload still masked by the sender with `mask` (see ``FrameDecoder/Configuration/keepsMasked``).
    func relayMaskedPayload(_ payload: ByteBuffer, mask: WebSocketMask, offset: Int)
    /// End of the other side's read batch: one flush per batch.
    func relayFlush()
    /// The other side is gone or closing: close this leg's peer, telling it `code` where it can hear one.
    func relayClose(code: WebSocketCloseCode?, reason: String)
    /// The client vanished without a close frame (its connection dropped, or it stopped answering
    /// pings): a session that can be resumed is held rather than closed.
    func relayPeerVanished()
    /// Whether this leg can take more writes; the other side stops reading while it can't.
    var isWritable: Bool { get }
    /// This leg's peer closed inside a frame being relayed to it: the other side passes that frame's
    /// remaining payload on even though its own hop is closing, so the answer can follow the frame.
    var awaitsFrameEnd: Bool { get }
    /// This leg's peer drained its buffer: the other side may read again.
    func resumeReading()
}

extension RelayPartner {
    func relayPeerVanished() {
        self.relayClose(code: .goingAway, reason: "client went away")
    }
}

/// What a byte-stream backend leg (``TCPLegHandler``) reports to: a relay session, or the hub of a
/// held or shared one.
protocol ByteStreamLegOwner: AnyObject {
    var logger: Logger { get }
    var clientAddress: String { get }
    var route: String { get }
    var closeTimeout: TimeAmount { get }
    func count(from side: RelaySession.Side, messages: Int, bytes: Int)
    func noteActivity(at now: NIODeadline)
    /// The leg's connection closed.
    func legFinished()
}

extension RelaySession: ByteStreamLegOwner {}
