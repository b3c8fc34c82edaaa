import Foundation
import NIOCore
import Yams

/// Everything wsgate runs from: listeners, the ordered routing table and server-wide limits.
/// Built from a YAML file (``ConfigurationLoader``) or from command-line flags.
public struct GatewayConfiguration: Sendable, Equatable {
    public var listeners: [ListenerConfiguration]
    public var routes: [RouteConfiguration]
    public var server: ServerSettings
    /// The admin listener (`/metrics`, `/healthz`, `/readyz`); nil: none.
    public var admin: AdminConfiguration?

    public init(listeners: [ListenerConfiguration], routes: [RouteConfiguration], server: ServerSettings = ServerSettings()) {
        self.listeners = listeners
        self.routes = routes
        self.server = server
    }
}

/// A separate plain-HTTP listener for operators and probes; keep it on a private address.
public struct AdminConfiguration: Sendable, Equatable {
    public var address: ListenAddress
    /// Bearer tokens (one per line) that every request but the probes (`/healthz`, `/readyz`) must
    /// present; nil: the listener is open to whoever reaches it.
    public var tokenFile: String?

    public init(address: ListenAddress, tokenFile: String? = nil) {
        self.address = address
        self.tokenFile = tokenFile
    }
}

/// Settings that apply to every connection, before a route is known.
public struct ServerSettings: Sendable, Equatable {
    /// Time a client has to send a complete request head, from connect or from the end of the
    /// previous response on a keep-alive connection. 10 s stops slowloris-style clients holding
    /// sockets while leaving room for slow mobile links.
    public var handshakeTimeout: TimeAmount = .seconds(10)
    /// Largest request head (request line and headers) accepted; larger ones get 431.
    /// 16 KiB holds real browser requests with large cookies, as nginx's default large buffers do.
    public var maxRequestHeadBytes: Int = 16 * 1024
    /// Time a peer has to answer our close frame before the connection is dropped.
    public var closeTimeout: TimeAmount = .seconds(5)
    /// On SIGTERM: how long sessions get to finish their closing handshakes (after 1001 Going
    /// Away) before the rest are cut and the process exits. Keep it under the orchestrator's grace
    /// period (Kubernetes: 30 s by default).
    public var drainTimeout: TimeAmount = .seconds(10)
    /// Event-loop threads; nil means one per CPU core.
    public var threads: Int?
    /// What the gateway's HTTP/2 SETTINGS advertise (ENABLE_CONNECT_PROTOCOL is always on).
    public var http2 = HTTP2Settings()
    /// Connection counts and handshake rates (YAML: top-level `limits`).
    public var limits = ConnectionLimits()
    /// Proxies whose `X-Forwarded-For` is believed (and passed on); from anyone else the
    /// `X-Forwarded-*` and `Forwarded` headers are dropped and the TCP peer is the client.
    public var trustedProxies: [IPNetwork] = []
    /// TCP keepalive on client and backend connections.
    public var keepalive = KeepaliveSettings()

    public init() {}
}

/// HTTP/2 limits advertised in the server's SETTINGS frame.
public struct HTTP2Settings: Sendable, Equatable {
    /// Streams (WebSocket sessions and requests) one connection may have open at once.
    public var maxConcurrentStreams: UInt32 = 128
    /// Per-stream receive window: the most a client may send on a stream before the gateway has
    /// handed the bytes to its backend. 64 KiB, like the relay's socket high-water mark.
    public var initialWindowSize: UInt32 = 65535
    /// Largest decoded header list accepted.
    public var maxHeaderListSize: UInt32 = 16 * 1024

    public init() {}
}

/// One listening socket: plain (HTTP/1.1 and h2c with prior knowledge) or TLS (ALPN h2, http/1.1).
public struct ListenerConfiguration: Sendable, Equatable, CustomStringConvertible {
    public var address: ListenAddress
    public var tls: ListenerTLS?
    /// Accept a PROXY protocol header (v1 or v2) from these peers, which must send one; other
    /// peers are plain clients. nil: PROXY protocol off.
    public var proxyProtocolFrom: [IPNetwork]?
    /// `SO_REUSEPORT`: several processes (or an old and a new one, during a restart) listen on the
    /// same address and the kernel spreads new connections across them.
    public var reusePort = false

    public init(address: ListenAddress, tls: ListenerTLS? = nil) {
        self.address = address
        self.tls = tls
    }

    public var description: String { "\(self.address)" + (self.tls == nil ? "" : " (tls)") + (self.reusePort ? " (reuse_port)" : "") }
}

/// PEM files for a TLS listener; re-read on SIGHUP.
public struct ListenerTLS: Sendable, Equatable {
    /// The certificate chain, leaf first.
    public var certificateFile: String
    public var keyFile: String
    /// mTLS: client certificates are verified against these CAs (PEM).
    public var clientCAFile: String?
    /// With a client CA: whether a certificate is required (else optional, and routes decide).
    public var clientCertificateRequired = true
    /// More certificates, each served to clients that ask (SNI) for a DNS name in its
    /// subjectAltName; the first certificate is served to everyone else.
    public var sniCertificates: [CertificatePair] = []
    /// More SNI certificates: every `NAME.pem` in this directory with its `NAME.key` beside it,
    /// looked for again whenever the directory changes.
    public var certificatesDirectory: String?

    public init(certificateFile: String, keyFile: String) {
        self.certificateFile = certificateFile
        self.keyFile = keyFile
    }

    /// The certificates found in `certificates_directory` now, in name order.
    var directoryCertificates: [CertificatePair] {
        guard let directory = self.certificatesDirectory else { return [] }
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasSuffix(".pem") && !$0.hasPrefix(".") }.sorted()
        return names.compactMap { name in
            let key = "\(directory)/\(name.dropLast(4)).key"
            return FileManager.default.fileExists(atPath: key) ? CertificatePair(certificateFile: "\(directory)/\(name)", keyFile: key) : nil
        }
    }

    /// Every file the listener reads (watched for changes), and the certificates' directory.
    var files: [String] {
        [self.certificateFile, self.keyFile] + (self.sniCertificates + self.directoryCertificates).flatMap { [$0.certificateFile, $0.keyFile] }
            + (self.clientCAFile.map { [$0] } ?? []) + (self.certificatesDirectory.map { [$0] } ?? [])
    }
}

/// A certificate chain (PEM, leaf first) and its key.
public struct CertificatePair: Sendable, Equatable {
    public var certificateFile: String
    public var keyFile: String

    public init(certificateFile: String, keyFile: String) {
        self.certificateFile = certificateFile
        self.keyFile = keyFile
    }
}

/// How the gateway checks a `wss://` backend. System trust roots unless a CA file is given.
public struct BackendTLS: Sendable, Equatable, Hashable {
    /// PEM file of the CA certificates to trust instead of the system's.
    public var caFile: String?
    /// Name sent as SNI and checked against the certificate; defaults to the URL's host (names only:
    /// for an IP address, set it to the name on the backend's certificate).
    public var serverName: String?
    /// A client certificate (PEM, chain allowed) and its key, for backends that require one (mTLS).
    public var certificateFile: String?
    public var keyFile: String?

    public init(caFile: String? = nil, serverName: String? = nil, certificateFile: String? = nil, keyFile: String? = nil) {
        self.caFile = caFile
        self.serverName = serverName
        self.certificateFile = certificateFile
        self.keyFile = keyFile
    }
}

/// A listening address: `HOST:PORT`, `[IPV6]:PORT` or `:PORT` (all IPv4 interfaces).
public struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public init?(parsing text: String) {
        guard let (hostPart, portPart) = Self.split(text), let port = Int(portPart), (0...65535).contains(port) else { return nil }
        self.host = hostPart.isEmpty ? "0.0.0.0" : String(hostPart)
        self.port = port
    }

    public var description: String {
        self.host.contains(":") ? "[\(self.host)]:\(self.port)" : "\(self.host):\(self.port)"
    }

    /// What a refusal of `text` says, wherever an address is read (file, flags, environment).
    public static func invalid(_ text: String) -> String {
        "invalid address '\(text)' (use HOST:PORT, [IPV6]:PORT or :PORT)"
    }

    /// `HOST:PORT` or `[IPV6]:PORT` into its two parts (unchecked); nil for a bare IPv6 address.
    static func split(_ text: String) -> (host: Substring, port: Substring)? {
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { return nil }
            return (text[text.index(after: text.startIndex)..<close], rest.dropFirst())
        }
        guard let colon = text.lastIndex(of: ":") else { return nil }
        let host = text[..<colon]
        if host.contains(":") { return nil }  // bare IPv6 needs brackets
        return (host, text[text.index(after: colon)...])
    }
}

// MARK: YAML keys

extension GatewayConfiguration {
    /// The file's top level (read by ``ConfigurationLoader``).
    static var keys: [ConfigurationKey<Self>] {
        [
            .value("listeners", \.listeners, .list(.section, nonEmpty: "at least one listener is needed")).required("missing: at least one listener is needed"),
            .value("routes", \.routes, .list(.section, nonEmpty: "at least one route is needed")).required("missing: at least one route is needed"),
            .section("server", \.server),
            .section("limits", \.server.limits),
            .section("admin", \.admin),
        ]
    }

    static var blank: Self { Self(listeners: [], routes: []) }
}

extension AdminConfiguration: ConfigurationSection {
    static var keys: [ConfigurationKey<Self>] {
        [
            .value("address", \.address, .address).required(),
            .optional("token_file", \.tokenFile, .string, unset: "none: open to whoever reaches it"),
        ]
    }
    static var blank: Self { Self(address: ListenAddress(host: "", port: 0)) }
}

extension ServerSettings: ConfigurationSection {
    static var keys: [ConfigurationKey<Self>] {
        [
            .value("handshake_timeout", \.handshakeTimeout, .positiveDuration),
            // NIO's HTTP parser has its own 80 KiB ceiling; staying under it keeps the answer a 431.
            .value("max_request_head_bytes", \.maxRequestHeadBytes, .size().checked("must be from 256 bytes to 64KiB") { (256...65536).contains($0) }),
            .value("close_timeout", \.closeTimeout, .positiveDuration),
            .value("drain_timeout", \.drainTimeout, .positiveDuration),
            .optional("threads", \.threads, .integer(in: 1...1024), unset: "one per core"),
            .section("http2", \.http2),
            .value("trusted_proxies", \.trustedProxies, .networks),
            .section("keepalive", \.keepalive),
        ]
    }

    static var blank: Self { Self() }
}

extension HTTP2Settings: ConfigurationSection {
    static var keys: [ConfigurationKey<Self>] {
        [
            .value("max_concurrent_streams", \.maxConcurrentStreams, .count(in: 1...10_000)),
            // RFC 9113 §6.9.2: at most 2^31-1.
            .value("initial_window_size", \.initialWindowSize, .count(in: 1024...Int(Int32.max))),
            .value("max_header_list_size", \.maxHeaderListSize, .count(in: 1024...(1 << 20))),
        ]
    }

    static var blank: Self { Self() }
}

extension ListenerConfiguration: ConfigurationSection {
    static var keys: [ConfigurationKey<Self>] {
        [
            .value("address", \.address, .address).required(),
            .section("tls", \.tls),
            .group("proxy_protocol", [
                .optional("trusted", \.proxyProtocolFrom, .networks).required("missing: the proxies (CIDRs) allowed to send PROXY headers"),
            ]),
            .value("reuse_port", \.reusePort, .bool),
        ]
    }

    static var blank: Self { Self(address: ListenAddress(host: "", port: 0)) }
}

extension ListenerTLS: ConfigurationSection {
    static var keys: [ConfigurationKey<Self>] {
        [
            .value("certificate", \.certificateFile, .string),
            .value("key", \.keyFile, .string),
            .value("certificates", \.sniCertificates, .list(.section)),
            .optional("certificates_directory", \.certificatesDirectory, .string),
            .optional("client_ca", \.clientCAFile, .string),
            .value("client_certificate", \.clientCertificateRequired, .parsed({ ["required": true, "optional": false][$0] },
                                                                             invalid: { "expected required or optional, got '\($0)'" },
                                                                             show: { $0 ? "required" : "optional" }))
                .only(when: { $0.clientCAFile != nil }, "needs client_ca"),
        ]
    }

    static var blank: Self { Self(certificateFile: "", keyFile: "") }

    /// `certificate` and `key`, then `certificates` for other names; or `certificates` alone, the
    /// first one the default.
    static func finish(_ tls: inout Self, _ reader: ConfigurationReader, _ node: Node, _ key: String) throws(ConfigurationError) {
        if tls.certificateFile.isEmpty && tls.keyFile.isEmpty, let first = tls.sniCertificates.first {
            tls.certificateFile = first.certificateFile
            tls.keyFile = first.keyFile
            tls.sniCertificates.removeFirst()
        }
        guard !tls.certificateFile.isEmpty, !tls.keyFile.isEmpty else {
            throw reader.fail(node, key, "needs certificate and key (or a certificates list)")
        }
    }
}

extension CertificatePair: ConfigurationSection {
    static var keys: [ConfigurationKey<Self>] {
        [
            .value("certificate", \.certificateFile, .string).required(),
            .value("key", \.keyFile, .string).required(),
        ]
    }

    static var blank: Self { Self(certificateFile: "", keyFile: "") }
}

extension BackendTLS: ConfigurationSection {
    static var keys: [ConfigurationKey<Self>] {
        [
            .optional("ca", \.caFile, .string, unset: "system"),
            .optional("server_name", \.serverName, .string, unset: "the URL's host"),
            .optional("certificate", \.certificateFile, .string, unset: "none"),
            .optional("key", \.keyFile, .string, unset: "none"),
        ]
    }

    static var blank: Self { Self() }

    static func finish(_ settings: inout Self, _ reader: ConfigurationReader, _ node: Node, _ key: String) throws(ConfigurationError) {
        guard (settings.certificateFile == nil) == (settings.keyFile == nil) else {
            throw reader.fail(node, key, "a client certificate needs both certificate and key")
        }
    }
}
