import NIOCore

/// permessage-deflate state of a client leg: the inflater for what the client sends, the deflater
/// for what it receives, and where each direction is within its current message.
final class LegCompression {
    /// Inflated output is handed to the other leg in frames of at most this size.
    static let chunkSize = 16 * 1024

    let settings: CompressionSettings
    let inflater: MessageInflater
    let deflater: MessageDeflater

    // From the client: the compressed message being inflated.
    var inboundOpcode = WebSocketOpcode.binary
    var inboundStarted = false
    /// The opcode of the next frame relayed for the inflated message.
    var inboundFrameOpcode: WebSocketOpcode { self.inboundStarted ? .continuation : self.inboundOpcode }
    var inboundFrameRemaining = 0
    var inboundFrameFin = false
    var inflatedBytes = 0
    var inboundUTF8 = UTF8Validator()
    /// Inflating stopped because the other leg could not take more: the compressed bytes left, whether
    /// they are the message tail, and the reads that arrived meanwhile.
    var paused = false
    var pausedInput = ByteBuffer()
    var pausedInTail = false
    var heldReads: [ByteBuffer] = []

    // To the client: the message being compressed.
    var outboundCompressing = false
    var outboundOpcode = WebSocketOpcode.binary
    var outboundStarted = false
    var outboundFrameRemaining = 0
    var outboundFrameFin = false

    /// The client leg: the gateway is the server of this hop.
    init(parameters: DeflateParameters, settings: CompressionSettings) {
        self.settings = settings
        self.inflater = MessageInflater(windowBits: parameters.clientWindowBits, resetsEachMessage: parameters.clientNoContextTakeover)
        self.deflater = MessageDeflater(windowBits: parameters.serverWindowBits, level: settings.level, memoryLevel: settings.memoryLevel,
                                        resetsEachMessage: parameters.serverNoContextTakeover)
    }

    /// A WebSocket backend leg: the gateway is the client of this hop.
    init(backend: BackendDeflate, settings: CompressionSettings) {
        self.settings = settings
        self.inflater = MessageInflater(windowBits: backend.backendWindowBits, resetsEachMessage: backend.backendResetsEachMessage)
        self.deflater = MessageDeflater(windowBits: settings.windowBits, level: settings.level, memoryLevel: settings.memoryLevel,
                                        resetsEachMessage: backend.gatewayResetsEachMessage)
    }
}
