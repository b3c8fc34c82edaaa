import NIOCore

/// permessage-deflate on one WebSocket leg: the inflater for what its peer sends, the deflater for
/// what it receives, and where each direction is within its current message (the state machines
/// in `Compression/DeflateMessageState.swift`).
final class LegCompression {
    /// Inflated output is handed to the other leg in frames of at most this size.
    static let chunkSize = 16 * 1024

    let inflater: MessageInflater
    let deflater: MessageDeflater

    /// From the peer: the compressed message being inflated.
    var inbound: InflatingMessage
    /// While `inbound` is paused: the compressed bytes left (the reads that arrive meanwhile are
    /// held by the leg).
    var pausedInput = ByteBuffer()
    /// To the peer: the message being compressed.
    var outbound: DeflatingMessage

    /// The client leg: the gateway is the server of this hop.
    init(parameters: DeflateParameters, settings: CompressionSettings, maxMessageBytes: Int) {
        self.inbound = InflatingMessage(maxMessageBytes: maxMessageBytes, checksUTF8: true)
        self.outbound = DeflatingMessage(minimumMessageBytes: settings.minimumMessageBytes)
        self.inflater = MessageInflater(windowBits: parameters.clientWindowBits, resetsEachMessage: parameters.clientNoContextTakeover)
        self.deflater = MessageDeflater(windowBits: parameters.serverWindowBits, level: settings.level, memoryLevel: settings.memoryLevel,
                                        resetsEachMessage: parameters.serverNoContextTakeover)
    }

    /// A WebSocket backend leg: the gateway is the client of this hop.
    init(backend: BackendDeflate, settings: CompressionSettings, maxMessageBytes: Int) {
        self.inbound = InflatingMessage(maxMessageBytes: maxMessageBytes, checksUTF8: false)
        self.outbound = DeflatingMessage(minimumMessageBytes: settings.minimumMessageBytes)
        self.inflater = MessageInflater(windowBits: backend.backendWindowBits, resetsEachMessage: backend.backendResetsEachMessage)
        self.deflater = MessageDeflater(windowBits: settings.windowBits, level: settings.level, memoryLevel: settings.memoryLevel,
                                        resetsEachMessage: backend.gatewayResetsEachMessage)
    }
}
