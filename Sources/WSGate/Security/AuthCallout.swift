import AsyncHTTPClient
import Crypto
import Foundation
import Logging
import Metrics
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// `auth.http`: one GET to an authorisation service per handshake, as nginx's `auth_request`,
/// Envoy's `ext_authz` and Traefik's ForwardAuth do. The service gets the configured client headers
/// and the request's method, URI, host, scheme and client address in `X-Forwarded-*` headers.
///
/// - 2xx admits. The user comes from `X-WSGate-User`, or a JSON body `{"user", "target", "headers",
///   "expires_at"}`: a target (still confined by the route's `targets.allowed`), headers for a
///   WebSocket backend, and when the session must end (epoch seconds or RFC 3339).
/// - 401 and 403 go to the client as they are (status, body up to 4 KiB, `WWW-Authenticate`).
/// - Anything else — another status, a timeout, no answer — is 503: the gateway fails closed.
///
/// Positive answers are kept for `cache`, keyed by the forwarded headers' values (and the route),
/// at most ``maxCached`` of them.
final class AuthCallout: Sendable {
    /// What a positive answer said.
    struct Verdict: Sendable {
        var user: String?
        var target: String?
        var headers: [(name: String, value: String)] = []
        /// Wall clock: compared with `Date()` when a cached verdict is reused.
        var expiresAt: Date?
    }

    static let maxCached = 10_000
    static let maxBodyBytes = 64 * 1024
    static let passedOnBodyBytes = 4 * 1024

    /// One client for the process: pooled keep-alive connections to the service, redirects never
    /// followed (a 302 to a login page must not read as "allowed"), on NIO's shared event loops.
    /// Never shut down: it lives as long as the process.
    static let client: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.redirectConfiguration = .disallow
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 64)
        configuration.decompression = .disabled
        return HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: configuration)
    }()

    private let settings: HTTPAuthSettings
    private let route: String
    private let logger: Logger
    private let cache = NIOLockedValueBox<[SHA256Digest: (verdict: Verdict, until: NIODeadline)]>([:])
    private let outcomes: [String: Counter]

    init(_ settings: HTTPAuthSettings, route: String, logger: Logger) {
        self.settings = settings
        self.route = route
        self.logger = logger
        var outcomes: [String: Counter] = [:]
        for result in ["allowed", "denied", "cached", "error", "timeout"] {
            outcomes[result] = Counter(label: "wsgate_auth_callouts_total", dimensions: [("route", route), ("result", result)])
        }
        self.outcomes = outcomes
    }

    private func count(_ result: String) {
        self.outcomes[result]?.increment()
    }

    /// Asks the service about `request` (from cache when allowed); fails with the refusal the
    /// client gets.
    func check(_ request: UpgradeRequest, on eventLoop: EventLoop) -> EventLoopFuture<Verdict> {
        let forwarded = self.settings.forwardHeaders.flatMap { name in request.head.headers[name].map { (name, $0) } }
        let key = self.cacheKey(forwarded)
        if let key, let cached = self.cached(key) {
            self.count("cached")
            return eventLoop.makeSucceededFuture(cached)
        }
        var outgoing = HTTPClientRequest(url: self.settings.url)
        outgoing.method = .GET
        for (name, value) in forwarded { outgoing.headers.add(name: name, value: value) }
        outgoing.headers.add(name: "X-Forwarded-Method", value: request.head.method.rawValue)
        outgoing.headers.add(name: "X-Forwarded-Proto", value: request.clientUsesTLS ? "https" : "http")
        if let host = request.head.headers.first(name: "host") { outgoing.headers.add(name: "X-Forwarded-Host", value: host) }
        outgoing.headers.add(name: "X-Forwarded-Uri", value: request.head.uri)
        outgoing.headers.add(name: "X-Original-URI", value: request.head.uri)
        if let ip = request.clientAddress?.ipAddress {
            outgoing.headers.add(name: "X-Forwarded-For", value: ip)
            outgoing.headers.add(name: "X-Real-IP", value: ip)
        }
        let timeout = self.settings.timeout
        let url = self.settings.url
        let finished = outgoing
        return eventLoop.makeFutureWithTask {
            try await Self.ask(finished, timeout: timeout)
        }.flatMapErrorThrowing { error in
            if let refusal = error as? HTTPRefusal { throw refusal }
            let timedOut = (error as? HTTPClientError) == .deadlineExceeded || (error as? HTTPClientError) == .readTimeout
                || (error as? HTTPClientError) == .connectTimeout
            self.count(timedOut ? "timeout" : "error")
            self.logger.warning("auth service \(timedOut ? "did not answer in \(timeout.prettyDescription)" : "failed: \(error)")", metadata: ["route": "\(self.route)", "url": "\(url)"])
            throw HTTPRefusal(.serviceUnavailable, "auth service unavailable", headers: ["Retry-After": "1"], closesConnection: true, label: "auth_unavailable")
        }.flatMapThrowing { answer in
            switch answer.status.code {
            case 200..<300:
                let verdict = try self.verdict(answer)
                self.count("allowed")
                if let key, let cacheFor = self.settings.cache { self.remember(verdict, key: key, for: cacheFor) }
                return verdict
            case 401, 403:
                self.count("denied")
                var headers = HTTPHeaders()
                for value in answer.headers["www-authenticate"] { headers.add(name: "WWW-Authenticate", value: value) }
                var refusal = HTTPRefusal(answer.status, "auth service answered \(answer.status.code)", headers: headers, closesConnection: true, label: "auth")
                refusal.bodyOverride = String(decoding: answer.body.readableBytesView.prefix(Self.passedOnBodyBytes), as: UTF8.self)
                throw refusal
            default:
                self.count("error")
                self.logger.warning("auth service answered \(answer.status.code): failing closed", metadata: ["route": "\(self.route)", "url": "\(url)"])
                throw HTTPRefusal(.serviceUnavailable, "auth service answered \(answer.status.code)", headers: ["Retry-After": "1"], closesConnection: true, label: "auth_unavailable")
            }
        }
    }

    private struct Answer: Sendable {
        var status: HTTPResponseStatus
        var headers: HTTPHeaders
        var body: ByteBuffer
    }

    private static func ask(_ request: HTTPClientRequest, timeout: TimeAmount) async throws -> Answer {
        let deadline = NIODeadline.now() + timeout
        let response = try await Self.client.execute(request, deadline: deadline)
        // Bounded: a service that answers megabytes is failed, not buffered.
        let body = try await response.body.collect(upTo: Self.maxBodyBytes)
        return Answer(status: response.status, headers: response.headers, body: body)
    }

    /// The user from `X-WSGate-User`, or the JSON body's fields.
    private func verdict(_ answer: Answer) throws -> Verdict {
        var verdict = Verdict(user: answer.headers.first(name: "x-wsgate-user"))
        let isJSON = answer.headers.first(name: "content-type")?.lowercased().hasPrefix("application/json") ?? false
        guard isJSON, answer.body.readableBytes > 0 else { return verdict }
        struct Body: Decodable {
            var user: String?
            var target: String?
            var headers: [String: String]?
            var expires_at: ExpiresAt?
        }
        enum ExpiresAt: Decodable {
            case epoch(Double)
            case text(String)
            init(from decoder: Decoder) throws {
                let container = try decoder.singleValueContainer()
                if let seconds = try? container.decode(Double.self) { self = .epoch(seconds) } else { self = .text(try container.decode(String.self)) }
            }
        }
        let body: Body
        do {
            body = try JSONDecoder().decode(Body.self, from: Data(answer.body.readableBytesView))
        } catch {
            self.count("error")
            throw HTTPRefusal(.serviceUnavailable, "auth service answered JSON that is not {user, target, headers, expires_at}: \(error)", closesConnection: true, label: "auth_unavailable")
        }
        verdict.user = body.user ?? verdict.user
        verdict.target = body.target
        for (name, value) in (body.headers ?? [:]).sorted(by: { $0.key < $1.key }) {
            guard HTTPTokens.isToken(name), !BackendRequestHeaders.notForwarded.contains(name.lowercased()) else {
                throw HTTPRefusal(.serviceUnavailable, "auth service named a header the gateway cannot set: '\(name)'", closesConnection: true, label: "auth_unavailable")
            }
            verdict.headers.append((name, try BackendIdentity.checked(value, for: name)))
        }
        switch body.expires_at {
        case .epoch(let seconds)?: verdict.expiresAt = Date(timeIntervalSince1970: seconds)
        case .text(let text)?:
            guard let date = try? Date(text, strategy: .iso8601) else {
                throw HTTPRefusal(.serviceUnavailable, "auth service's expires_at '\(text)' is not RFC 3339", closesConnection: true, label: "auth_unavailable")
            }
            verdict.expiresAt = date
        case nil: break
        }
        if let expiresAt = verdict.expiresAt, expiresAt <= Date() {
            throw HTTPRefusal(.forbidden, "auth service's answer had already expired", closesConnection: true, label: "auth")
        }
        return verdict
    }

    // MARK: Cache

    /// nil when nothing is forwarded: every client would share one answer.
    private func cacheKey(_ forwarded: [(String, String)]) -> SHA256Digest? {
        guard self.settings.cache != nil, !forwarded.isEmpty else { return nil }
        var hasher = SHA256()
        hasher.update(data: Array(self.route.utf8) + [0])
        for (name, value) in forwarded {
            hasher.update(data: Array(name.utf8) + [0] + Array(value.utf8) + [0])
        }
        return hasher.finalize()
    }

    private func cached(_ key: SHA256Digest) -> Verdict? {
        let now = NIODeadline.now()
        return self.cache.withLockedValue { cache in
            guard let entry = cache[key] else { return nil }
            guard entry.until > now, entry.verdict.expiresAt.map({ $0 > Date() }) ?? true else {
                cache.removeValue(forKey: key)
                return nil
            }
            return entry.verdict
        }
    }

    private func remember(_ verdict: Verdict, key: SHA256Digest, for duration: TimeAmount) {
        let now = NIODeadline.now()
        self.cache.withLockedValue { cache in
            if cache.count >= Self.maxCached {
                cache = cache.filter { $0.value.until > now }
                if cache.count >= Self.maxCached { cache.removeAll() }
            }
            cache[key] = (verdict, now + duration)
        }
    }
}
