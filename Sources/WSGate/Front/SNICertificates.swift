import NIOSSL

/// A TLS listener's certificates beyond its default, by the DNS names in each one's
/// subjectAltName: a client asking (SNI) for `a.test` gets the certificate naming `a.test`, or
/// `*.test`; anyone else the default. Read once per context (a reload reads them again).
struct SNICertificates: Sendable {
    struct Entry: Sendable {
        var names: [String]
        var chain: [NIOSSLCertificate]
        var key: NIOSSLPrivateKey
    }

    struct NoNames: Error, CustomStringConvertible {
        var file: String
        var description: String { "\(self.file) names no DNS name in its subjectAltName, so no client could ask for it" }
    }

    let entries: [Entry]
    /// Why each directory certificate left out was left out, for the log.
    let skipped: [String]

    /// A listed certificate that cannot be used fails the load: the configuration names it. One
    /// found in the directory is left out instead: a stray or half-written file there must not
    /// hold back the listener, or every other certificate the directory gains.
    init(listed: [CertificatePair], found: [CertificatePair]) throws {
        var entries = try listed.map(Self.entry)
        var skipped: [String] = []
        for pair in found {
            do {
                entries.append(try Self.entry(pair))
            } catch {
                skipped.append("\(pair.certificateFile) left out: \(error)")
            }
        }
        self.entries = entries
        self.skipped = skipped
    }

    private static func entry(_ pair: CertificatePair) throws -> Entry {
        let chain = try NIOSSLCertificate.fromPEMFile(pair.certificateFile)
        let names = chain.first.map(Self.dnsNames) ?? []
        guard !names.isEmpty else { throw NoNames(file: pair.certificateFile) }
        return Entry(names: names, chain: chain, key: try NIOSSLPrivateKey(file: pair.keyFile, format: .pem))
    }

    /// The leaf's subjectAltName DNS entries, through swift-nio-ssl's underscored accessor (its
    /// only one; what it reads is BoringSSL's parse of the certificate).
    static func dnsNames(_ certificate: NIOSSLCertificate) -> [String] {
        certificate._subjectAlternativeNames().compactMap { name in
            name.nameType == .dnsName ? String(decoding: name.contents, as: UTF8.self).lowercased() : nil
        }
    }

    /// The first certificate naming `host` exactly, else the first whose wildcard covers it (one
    /// label, as RFC 6125 allows); no change (the default) otherwise.
    func override(for host: String?) -> NIOSSLContextConfigurationOverride {
        guard let host = host?.lowercased(), !host.isEmpty else { return .noChanges }
        let match = self.entries.first { $0.names.contains(host) } ?? self.entries.first { entry in
            entry.names.contains { name in
                guard name.hasPrefix("*."), let dot = host.firstIndex(of: ".") else { return false }
                return host[dot...] == name.dropFirst()
            }
        }
        guard let match else { return .noChanges }
        var override = NIOSSLContextConfigurationOverride()
        override.certificateChain = match.chain.map { .certificate($0) }
        override.privateKey = .privateKey(match.key)
        return override
    }
}
