import Foundation

/// websockify's command line (`websockify [options] [source_addr:]source_port [target_addr:target_port]`)
/// as a wsgate configuration. The result is YAML, so `--print-config` shows exactly what runs and a
/// user can move on to a file. The options deployments use are mapped; every other websockify
/// option is refused by name, with the reason, never silently ignored.
///
/// Dynamic targets stay confined, as everywhere in wsgate: a token plugin's route may reach the
/// `host:port` targets its token source names when the gateway starts (or the `--allow` patterns
/// given), and `unix_socket:` targets only in their directory (or `--unix-directory`).
public enum WebsockifyCommandLine {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
        init(_ description: String) { self.description = description }
    }

    public struct Translation: Sendable {
        public var yaml: String
        /// What differs from websockify, for standard error.
        public var notes: [String] = []
        /// `-v`: debug logging.
        public var verbose = false
        /// `--print-config`: print the YAML and exit.
        public var printsConfiguration = false
    }

    /// Options websockify has and wsgate does not take, with why.
    static let unsupported: [String: String] = [
        "--daemon": "run wsgate in the foreground under a supervisor (systemd, a container)",
        "-D": "run wsgate in the foreground under a supervisor (systemd, a container)",
        "--run-once": "wsgate serves until it is stopped",
        "--timeout": "wsgate does not exit on its own",
        "--traffic": "use --verbose, or record sessions with --record",
        "--key-password": "give wsgate an unencrypted key file (readable by it only)",
        "--ssl-target": "use a configuration file with a wss:// backend",
        "--verify-client": "use a configuration file: tls.client_ca on the listener",
        "--cafile": "use a configuration file: tls.client_ca on the listener",
        "--ssl-version": "wsgate accepts TLS 1.2 and newer",
        "--ssl-ciphers": "wsgate uses BoringSSL's default ciphers",
        "--inetd": "wsgate opens its own listening socket",
        "--web-auth": "use a configuration file: auth on a route (static files are never behind auth)",
        "--wrap-mode": "wsgate does not wrap programs",
        "--prefer-ipv6": "give an IPv6 source address in brackets, e.g. [::]:6080",
        "-6": "give an IPv6 source address in brackets, e.g. [::]:6080",
        "--libserver": "wsgate has one server engine",
        "--auth-plugin": "use a configuration file: auth on the route (tokens, htpasswd, JWT, or an HTTP auth service)",
        "--auth-source": "use a configuration file: auth on the route (tokens, htpasswd, JWT, or an HTTP auth service)",
        "--log-file": "wsgate logs to standard error (--log-format json for collectors)",
        "--syslog": "wsgate logs to standard error (--log-format json for collectors)",
        "--legacy-syslog": "wsgate logs to standard error (--log-format json for collectors)",
    ]

    /// Options that take a value (`--web DIR` or `--web=DIR`).
    static let valued: Set<String> = [
        "--web", "--cert", "--key", "--record", "--idle-timeout", "--heartbeat", "--unix-target", "--target-config",
        "--token-plugin", "--token-source", "--allow", "--unix-directory",
    ]

    public static func translate(_ arguments: [String]) throws(Failure) -> Translation {
        var options: [String: [String]] = [:]
        var flags: Set<String> = []
        var positionals: [String] = []
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            if argument == "--" { throw Failure("wrapping a program (-- WRAP_COMMAND_LINE) is not supported by wsgate: start the program yourself and give its port as the target") }
            guard argument.hasPrefix("-"), argument != "-" else {
                positionals.append(argument)
                continue
            }
            let equals = argument.firstIndex(of: "=")
            let name = String(argument[..<(equals ?? argument.endIndex)])
            let inline = equals.map { String(argument[argument.index(after: $0)...]) }
            if let reason = Self.unsupported[name] {
                throw Failure("websockify option \(name) is not supported by wsgate: \(reason)")
            }
            if Self.valued.contains(name) {
                let value: String
                if let inline {
                    value = inline
                } else {
                    guard index < arguments.count else { throw Failure("\(name) needs a value") }
                    value = arguments[index]
                    index += 1
                }
                options[name, default: []].append(value)
            } else if ["-v", "--verbose", "--ssl-only", "--host-token", "--print-config"].contains(name), inline == nil {
                flags.insert(name)
            } else {
                throw Failure("unknown option \(name) (websockify's options that wsgate takes: --web, --cert, --key, --ssl-only, --record, --idle-timeout, --heartbeat, --unix-target, --token-plugin, --token-source, --target-config, --host-token, -v; wsgate's own: --allow, --unix-directory, --print-config)")
            }
        }
        func single(_ name: String) throws(Failure) -> String? {
            guard let values = options[name] else { return nil }
            guard values.count == 1 else { throw Failure("\(name) given more than once") }
            return values[0]
        }
        func seconds(_ name: String) throws(Failure) -> String? {
            guard let text = try single(name) else { return nil }
            guard let value = Double(text), value > 0, value.isFinite else { throw Failure("\(name) expects seconds, got '\(text)'") }
            return value == value.rounded() ? "\(Int(value))s" : "\(Int((value * 1000).rounded()))ms"
        }

        var translation = Translation(yaml: "")
        translation.verbose = flags.contains("-v") || flags.contains("--verbose")
        translation.printsConfiguration = flags.contains("--print-config")
        guard let source = positionals.first else { throw Failure("missing [source_addr:]source_port") }
        guard positionals.count <= 2 else { throw Failure("unexpected argument '\(positionals[2])'") }
        let listen = source.contains(":") ? source : ":\(source)"
        guard ListenAddress(parsing: listen) != nil else { throw Failure("'\(source)' is not [source_addr:]source_port") }

        var lines = ["# wsgate configuration translated from: websockify \(arguments.map(Self.shellQuoted).joined(separator: " "))"]
        // Listener.
        let cert = try single("--cert")
        let key = try single("--key")
        if flags.contains("--ssl-only") && cert == nil { throw Failure("--ssl-only needs --cert") }
        if key != nil && cert == nil { throw Failure("--key needs --cert") }
        lines.append("listeners:")
        lines.append("  - address: \(Self.quoted(listen))")
        if let cert {
            lines.append("    tls: {certificate: \(Self.quoted(cert)), key: \(Self.quoted(key ?? cert))}")
            if !flags.contains("--ssl-only") {
                translation.notes.append("wsgate serves TLS only on a --cert listener (websockify also takes plain connections unless --ssl-only)")
            }
        }

        // The route: every path, as websockify upgrades any.
        lines.append("routes:")
        lines.append("  - path: /")
        // Browsers' pages come from --web on the same origin, or from elsewhere: websockify checks no Origin.
        lines.append("    origins: any")
        let target = positionals.count == 2 ? positionals[1] : nil
        let unixTarget = try single("--unix-target")
        let plugin = try single("--token-plugin")
        let tokenSource = try single("--token-source")
        let targetConfig = try single("--target-config")
        let choices = [target != nil, unixTarget != nil, plugin != nil || targetConfig != nil].filter { $0 }.count
        guard choices <= 1 else { throw Failure("give one of target_addr:target_port, --unix-target, or a token plugin (--token-plugin/--target-config)") }
        guard choices == 1 else { throw Failure("missing target: target_addr:target_port, --unix-target FILE, or --token-plugin TokenFile --token-source PATH") }
        if let target {
            guard let backend = TargetTokenFile.backend(target), case .tcp = backend else { throw Failure("'\(target)' is not target_addr:target_port") }
            lines.append("    backend: \(Self.quoted(backend.description))")
        } else if let unixTarget {
            lines.append("    backend: \(Self.quoted("unix:\(unixTarget)"))")
        } else {
            let kind = targetConfig != nil ? "TokenFile" : plugin ?? ""
            let className = kind.split(separator: ".").last.map(String.init) ?? kind
            lines += try Self.tokenTargets(className, source: targetConfig ?? tokenSource, allow: options["--allow"] ?? [],
                                           unixDirectory: try single("--unix-directory"), hostToken: flags.contains("--host-token"), notes: &translation.notes)
        }
        if flags.contains("--host-token") && plugin == nil && targetConfig == nil { throw Failure("--host-token needs a token plugin") }
        if let web = try single("--web") {
            lines.append("    static: {root: \(Self.quoted(web))}")
        }
        var limits: [String] = []
        if let heartbeat = try seconds("--heartbeat") { limits.append("ping_interval: \(heartbeat)") }
        if let idle = try seconds("--idle-timeout") {
            limits.append("idle_timeout: \(idle)")
            translation.notes.append("--idle-timeout: wsgate closes sessions idle that long and keeps running (websockify exits after that long without connections)")
        }
        if !limits.isEmpty { lines.append("    limits: {\(limits.joined(separator: ", "))}") }
        if let record = try single("--record") {
            let directory = URL(fileURLWithPath: record).deletingLastPathComponent().path
            lines.append("    record: \(Self.quoted(directory))")
            translation.notes.append("--record: one recording per session in \(directory), in wsgate's format (play it back with `wsgate replay`)")
        }
        translation.yaml = lines.joined(separator: "\n") + "\n"
        return translation
    }

    /// `targets:` for websockify's TokenFile (a file or directory of `token: host:port` lines) or
    /// JWTTokenApi (a key file; the target in the token's `host`/`port` claims).
    static func tokenTargets(_ plugin: String, source: String?, allow: [String], unixDirectory: String?, hostToken: Bool, notes: inout [String]) throws(Failure) -> [String] {
        guard let source else { throw Failure("--token-plugin \(plugin) needs --token-source") }
        var lines: [String] = []
        var allowed = allow
        var directory = unixDirectory
        switch plugin {
        case "TokenFile", "ReadOnlyTokenFile":
            let tokens: [String: String]
            do {
                tokens = try TargetTokenFile.parse(try FileOrDirectory.read(source))
            } catch {
                throw Failure("--token-source \(source): \(error)")
            }
            if allowed.isEmpty || directory == nil {
                var patterns: [String] = []
                var directories: Set<String> = []
                for target in tokens.values.sorted() {
                    switch TargetTokenFile.backend(target) {
                    case .tcp(let host, let port)?, .webSocket(let host, let port, _, _, _)?:
                        patterns.append(host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)")
                    case .unix(let path)?:
                        directories.insert(URL(fileURLWithPath: path).deletingLastPathComponent().path)
                    case nil:
                        throw Failure("--token-source \(source): '\(target)' is not host:port or unix_socket:PATH")
                    }
                }
                if allowed.isEmpty {
                    allowed = Array(Set(patterns)).sorted()
                    if !allowed.isEmpty {
                        notes.append("tokens may reach only the \(allowed.count) target(s) named in \(source) now (give --allow HOST:PORTS for targets added later)")
                    }
                }
                if directory == nil, !directories.isEmpty {
                    guard directories.count == 1, let only = directories.first else {
                        throw Failure("--token-source \(source): unix_socket targets in several directories; give --unix-directory DIR")
                    }
                    directory = only
                }
            }
            lines.append("    targets:")
            lines.append("      token_file: \(Self.quoted(source))")
        case "JWTTokenApi":
            guard !allowed.isEmpty else { throw Failure("--token-plugin JWTTokenApi: give --allow HOST:PORTS for the targets tokens may name (wsgate reaches no target that was not configured)") }
            let text = (try? String(contentsOfFile: source, encoding: .utf8)) ?? ""
            // A PEM key (public or private), or a symmetric key as a JWK's base64url `k`, as websockify reads it.
            let key = text.contains("-----BEGIN") ? "public_keys: [\(Self.quoted(source))]" : "hs256_secret_file: \(Self.quoted(source)), hs256_secret_encoding: base64url"
            lines.append("    auth: {jwt: {\(key), require_exp: false}}")
            lines.append("    targets:")
            lines.append("      from_jwt: true")
            notes.append("JWTTokenApi: tokens without exp are accepted, as websockify does; set auth.jwt.require_exp in a configuration file to refuse them")
        default:
            throw Failure("--token-plugin \(plugin) is not supported by wsgate (TokenFile, ReadOnlyTokenFile and JWTTokenApi are; use a configuration file with auth.http for others)")
        }
        if hostToken { lines.append("      token_from: host") }
        if !allowed.isEmpty { lines.append("      allowed: [\(allowed.map(Self.quoted).joined(separator: ", "))]") }
        if let directory { lines.append("      unix_directory: \(Self.quoted(directory))") }
        if allowed.isEmpty && directory == nil { throw Failure("--token-source \(source) names no target; give --allow HOST:PORTS") }
        return lines
    }

    /// A YAML double-quoted scalar: JSON's string syntax is valid YAML.
    static func quoted(_ text: String) -> String {
        JSONString.quoted(text)
    }

    static func shellQuoted(_ text: String) -> String {
        text.allSatisfy { $0.isLetter || $0.isNumber || "-_./:=@,".contains($0) } ? text : "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}
