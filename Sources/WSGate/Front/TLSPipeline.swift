import NIOCore
import NIOSSL
import NIOTLS

/// A TLS listener's connection: TLS, then by ALPN either HTTP/2 or HTTP/1.1 (no ALPN: whatever the
/// first bytes say). The whole TLS handshake must finish within the handshake timeout.
enum TLSPipeline {
    static func configure(_ channel: Channel, context: NIOSSLContext, gateway: GatewayContext, client: ClientConnection) throws {
        let sync = channel.pipeline.syncOperations
        try sync.addHandler(NIOSSLServerHandler(context: context))
        let timeout = gateway.settings.handshakeTimeout
        let deadline = channel.eventLoop.assumeIsolated().scheduleTask(deadline: client.handshakeDeadline) {
            gateway.logger.info("dropped client: TLS handshake not done within \(timeout.prettyDescription)", metadata: ["client": "\(client.loggable)"])
            channel.close(promise: nil)
        }
        channel.closeFuture.whenComplete { _ in deadline.cancel() }
        try sync.addHandler(ApplicationProtocolNegotiationHandler { result, channel in
            deadline.cancel()
            // Verified by NIOSSL against the listener's client CA, if it has one.
            if let certificate = try? channel.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self).peerCertificate {
                client.certificateSubject = ClientSubject.describe(certificate)
            }
            return channel.eventLoop.makeCompletedFuture {
                switch result {
                case .negotiated("h2"):
                    try channel.pipeline.syncOperations.addHandler(HTTP2ConnectionHandler(gateway: gateway, client: client, eventLoop: channel.eventLoop))
                case .negotiated("http/1.1"):
                    try HTTP1Pipeline.configure(channel, gateway: gateway, client: client)
                default:
                    try channel.pipeline.syncOperations.addHandler(ProtocolDetector(gateway: gateway, client: client))
                }
            }
        })
    }
}
