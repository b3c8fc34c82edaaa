import NIOSSL

extension BackendTLS {
    /// The client TLS context for a `wss://` route: TLS 1.2+, full certificate verification
    /// against the system roots or the route's CA file, the route's client certificate when it has
    /// one; ALPN `http/1.1`, since the backend handshake is an HTTP/1.1 upgrade. Made once per
    /// routing table (see ``Routing``), so a reload reads the files again.
    func makeContext() throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        configuration.applicationProtocols = ["http/1.1"]
        if let caFile = self.caFile {
            configuration.trustRoots = .file(caFile)
        }
        if let certificateFile = self.certificateFile, let keyFile = self.keyFile {
            configuration.certificateChain = try NIOSSLCertificate.fromPEMFile(certificateFile).map { .certificate($0) }
            configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: keyFile, format: .pem))
        }
        return try NIOSSLContext(configuration: configuration)
    }
}
