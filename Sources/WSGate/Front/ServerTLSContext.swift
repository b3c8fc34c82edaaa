import Logging
import NIOConcurrencyHelpers
import NIOSSL

/// A TLS listener's context, swappable at runtime: SIGHUP re-reads the PEM files and new connections
/// use the new certificate, while live ones keep the context they were accepted with.
final class ServerTLSContext: Sendable {
    let files: ListenerTLS
    private let logger: Logger
    private let current: NIOLockedValueBox<NIOSSLContext>

    init(files: ListenerTLS, logger: Logger) throws {
        self.files = files
        self.logger = logger
        self.current = NIOLockedValueBox(try Self.make(files, logger: logger))
    }

    var context: NIOSSLContext { self.current.withLockedValue { $0 } }

    /// Loads the files again; on failure the old context stays and the error is thrown.
    func reload() throws {
        let context = try Self.make(self.files, logger: self.logger)
        self.current.withLockedValue { $0 = context }
    }

    /// TLS 1.2 and later, ALPN `h2` then `http/1.1`; the SNI certificates chosen by the name a
    /// client asks for (a directory's that cannot be used are logged and left out).
    static func make(_ files: ListenerTLS, logger: Logger) throws -> NIOSSLContext {
        let chain = try NIOSSLCertificate.fromPEMFile(files.certificateFile)
        let key = try NIOSSLPrivateKey(file: files.keyFile, format: .pem)
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv12
        let byName = try SNICertificates(listed: files.sniCertificates, found: files.directoryCertificates)
        for reason in byName.skipped {
            logger.warning("TLS certificate \(reason)", metadata: ["certificates_directory": "\(files.certificatesDirectory ?? "")"])
        }
        if !byName.entries.isEmpty {
            configuration.sslContextCallback = { hello, promise in
                promise.succeed(byName.override(for: hello.serverHostname))
            }
        }
        configuration.applicationProtocols = ["h2", "http/1.1"]
        if let clientCA = files.clientCAFile {
            configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(clientCA))
            configuration.certificateVerification = files.clientCertificateRequired ? .noHostnameVerification : .optionalVerification
        }
        return try NIOSSLContext(configuration: configuration)
    }
}
