import NIOCore

/// Sits between the two legs of a recorded session and copies what passes into the recorder.
/// Only recorded routes have one: other sessions pay nothing.
final class RecordingTap: RelayPartner {
    private let inner: RelayPartner
    private let recorder: SessionRecorder
    private let direction: RecordingFormat.Direction
    private var isText = false
    private var frameRemaining = 0
    private var frameEndsMessage = false

    init(_ inner: RelayPartner, recorder: SessionRecorder, direction: RecordingFormat.Direction) {
        self.inner = inner
        self.recorder = recorder
        self.direction = direction
    }

    func relayFrame(opcode: WebSocketOpcode, fin: Bool, length: Int) {
        if opcode != .continuation { self.isText = opcode == .text }
        self.frameRemaining = length
        self.frameEndsMessage = fin
        if length == 0 && fin {
            self.recorder.record(self.direction, text: self.isText, payload: ByteBuffer(), ends: true)
        }
        self.inner.relayFrame(opcode: opcode, fin: fin, length: length)
    }

    func relayPayload(_ payload: ByteBuffer) {
        self.recordPiece(payload)
        self.inner.relayPayload(payload)
    }

    func relayMaskedPayload(_ payload: ByteBuffer, mask: WebSocketMask, offset: Int) {
        // The relay unmasks in place as it forwards; the recording gets an unmasked copy.
        var copy = ByteBufferAllocator().buffer(buffer: payload)
        copy.withUnsafeMutableReadableBytes { mask.apply(to: $0, offset: offset) }
        self.recordPiece(copy)
        self.inner.relayMaskedPayload(payload, mask: mask, offset: offset)
    }

    private func recordPiece(_ payload: ByteBuffer) {
        self.frameRemaining -= payload.readableBytes
        self.recorder.record(self.direction, text: self.isText, payload: payload, ends: self.frameEndsMessage && self.frameRemaining <= 0)
    }

    func relayFlush() {
        self.recorder.flush()
        self.inner.relayFlush()
    }

    func relayClose(code: WebSocketCloseCode?, reason: String) {
        self.inner.relayClose(code: code, reason: reason)
    }

    func relayPeerVanished() {
        self.inner.relayPeerVanished()
    }

    var isWritable: Bool { self.inner.isWritable }

    var awaitsFrameEnd: Bool { self.inner.awaitsFrameEnd }

    func resumeReading() {
        self.inner.resumeReading()
    }
}
