import NIOCore

/// What a member's client sent, on its way to the service: the client leg's frames as it relayed
/// them, sent to the hub once per read batch.
enum HubInput: Sendable {
    case frame(opcode: WebSocketOpcode, fin: Bool, length: Int)
    case payload(ByteBuffer)
}
