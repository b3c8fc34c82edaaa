import NIOCore
import NIOHTTP1

/// The HTTP/1.1 pipeline of an accepted connection, built by hand rather than with
/// `configureHTTPServerPipeline` so the gateway controls head limits and the upgrade itself.
enum HTTP1Pipeline {
    static func configure(_ channel: Channel, gateway: GatewayContext, client: ClientConnection) throws {
        let limiter = RequestHeadLimitHandler(limit: gateway.settings.maxRequestHeadBytes, logger: gateway.logger)
        let decoder = ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes))
        let encoder = HTTPResponseEncoder()
        let handler = HTTPServerHandler(gateway: gateway, client: client, headLimiter: limiter, decoder: decoder, encoder: encoder)
        let sync = channel.pipeline.syncOperations
        try sync.addHandler(limiter)
        try sync.addHandler(decoder)
        try sync.addHandler(encoder)
        try sync.addHandler(handler)
    }
}
