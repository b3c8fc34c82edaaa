import Foundation

/// The file-system pass after parsing: every file named must be readable now (they are read again
/// on reload), token and htpasswd files must parse, a static root must be a directory (its
/// symlinks resolved) and a recording directory writable. Errors point at the key that named it.
struct ConfigurationFiles {
    let reader: ConfigurationReader

    func check(_ configuration: inout GatewayConfiguration) throws(ConfigurationError) {
        for (index, listener) in configuration.listeners.enumerated() {
            guard let tls = listener.tls else { continue }
            let key = "listeners[\(index)].tls"
            try self.readable(tls.certificateFile, "\(key).certificate")
            try self.readable(tls.keyFile, "\(key).key")
            if let directory = tls.certificatesDirectory, !FileOrDirectory.isDirectory(directory) {
                throw self.reader.fail(at: "\(key).certificates_directory", "'\(directory)' is not a directory")
            }
            for (index, pair) in tls.sniCertificates.enumerated() {
                try self.readable(pair.certificateFile, "\(key).certificates[\(index)].certificate")
                try self.readable(pair.keyFile, "\(key).certificates[\(index)].key")
            }
            if let ca = tls.clientCAFile { try self.readable(ca, "\(key).client_ca") }
        }
        for index in configuration.routes.indices {
            try self.check(&configuration.routes[index], "routes[\(index)]")
        }
        if let file = configuration.admin?.tokenFile {
            try self.readable(file, "admin.token_file")
            let text = (try? String(contentsOfFile: file, encoding: .utf8)) ?? ""
            if BearerTokens(file: text).count == 0 { throw self.reader.fail(at: "admin.token_file", "\(file) holds no token") }
        }
    }

    private func check(_ route: inout RouteConfiguration, _ key: String) throws(ConfigurationError) {
        if let ca = route.backendTLS.caFile { try self.readable(ca, "\(key).backend_tls.ca") }
        if let certificate = route.backendTLS.certificateFile { try self.readable(certificate, "\(key).backend_tls.certificate") }
        if let privateKey = route.backendTLS.keyFile { try self.readable(privateKey, "\(key).backend_tls.key") }
        switch route.auth?.method {
        case .bearerTokens(let file): try self.readable(file, "\(key).auth.bearer_tokens_file")
        case .basic(let file):
            try self.parse(file, "\(key).auth.basic_htpasswd") { text in _ = try Htpasswd(file: text) }
        case .jwt(let jwt):
            if let file = jwt.hmacSecretFile { try self.readable(file, "\(key).auth.jwt.hs256_secret_file") }
            for (index, file) in jwt.publicKeyFiles.enumerated() { try self.readable(file, "\(key).auth.jwt.public_keys[\(index)]") }
            if let file = jwt.jwksFile { try self.readable(file, "\(key).auth.jwt.jwks_file") }
        case .bearerTokensFromEnvironment, .http, nil: break
        }
        if let file = route.targets?.tokenFile {
            try self.parse(file, "\(key).targets.token_file") { text in _ = try TargetTokenFile.parse(text) }
        }
        if let root = route.staticFiles?.root {
            let rootKey = "\(key).static.root"
            guard let real = StaticFileLookup.resolve(root, within: "/") else { throw self.reader.fail(at: rootKey, "cannot open directory \(root)") }
            guard FileOrDirectory.isDirectory(real) else { throw self.reader.fail(at: rootKey, "\(root) is not a directory") }
            route.staticFiles?.root = real
        }
        if let directory = route.record?.directory {
            let directoryKey = "\(key).record.directory"
            guard FileOrDirectory.isDirectory(directory) else {
                throw self.reader.fail(at: directoryKey, "\(directory) is not a directory (create it, writable by wsgate only)")
            }
            guard access(directory, W_OK) == 0 else { throw self.reader.fail(at: directoryKey, "\(directory) is not writable") }
        }
    }

    private func readable(_ path: String, _ key: String) throws(ConfigurationError) {
        guard FileManager.default.isReadableFile(atPath: path) else { throw self.reader.fail(at: key, "cannot read file '\(path)'") }
    }

    /// A readable file (or directory of files, see ``FileOrDirectory``) whose text `parse` accepts.
    private func parse(_ path: String, _ key: String, _ parse: (String) throws -> Void) throws(ConfigurationError) {
        try self.readable(path, key)
        do {
            try parse(try FileOrDirectory.read(path))
        } catch {
            throw self.reader.fail(at: key, "\(path): \(error)")
        }
    }

}
