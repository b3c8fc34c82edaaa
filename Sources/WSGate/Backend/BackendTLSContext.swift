import NIOSSL

extension BackendTLS {
    /// The client TLS context for a `wss://` route: TLS 1.2+, full certificate verification
    /// against the system roots or the route's CA file; ALPN `http/1.1`, since the backend
    /// handshake is an HTTP/1.1 upgrade. Made once per routing table (see ``Routing``).
    func makeContext() throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        configuration.applicationProtocols = ["http/1.1"]
        if let caFile = self.caFile {
            configuration.trustRoots = .file(caFile)
        }
        return try NIOSSLContext(configuration: configuration)
    }
}
