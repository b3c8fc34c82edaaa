import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// A route's checks that need state or I/O: its credentials store and its dynamic targets.
/// Built when the gateway starts (files read, keys parsed) and used for every handshake on the route.
final class RouteGuard: Sendable {
    /// Who the client proved to be, for the session's log line, a target its token names, and how
    /// long the credential holds: the session ends when it expires or is revoked.
    struct Identity: Sendable {
        /// For the log line ("token" when a token from a file admitted the client).
        var name: String?
        /// A user's own name (htpasswd, a JWT's `sub`), for `backend_identity`.
        var user: String?
        /// A JWT's claims as text, for `backend_identity`.
        var claims: [String: String] = [:]
        /// A target the credential names (a JWT claim, an auth service's `target`), for `targets: {from_jwt}`.
        var claimedTarget: String?
        /// The JWT's `exp` plus the leeway.
        var expires: NIODeadline?
        /// A token from a token file, checked again when the file changes.
        var lease: TokenLease?
        /// Headers an auth service asked to add to a WebSocket backend's request.
        var extraHeaders: [(name: String, value: String)] = []

        /// Who counts against `max_sessions_per_user`: the user, or the token itself.
        var quotaUser: String? { self.user ?? self.lease?.tokenID ?? self.name }
    }

    private enum Checker: Sendable {
        case tokens(WatchedFile<BearerTokens>)
        case fixedTokens(BearerTokens)
        case htpasswd(WatchedFile<Htpasswd>)
        case jwt(JWTVerifier)
        case http(AuthCallout)
    }

    let routePath: String
    private let auth: AuthSettings?
    private let checker: Checker?
    private let targets: DynamicTargets?
    private let targetMap: WatchedFile<[String: String]>?
    private let passwordChecks: PasswordChecks

    private init(route: RouteConfiguration, checker: Checker?, targetMap: WatchedFile<[String: String]>?, passwordChecks: PasswordChecks) {
        self.routePath = route.path
        self.auth = route.auth
        self.checker = checker
        self.targets = route.targets
        self.targetMap = targetMap
        self.passwordChecks = passwordChecks
    }

    static func make(_ route: RouteConfiguration, logger: Logger, passwordChecks: PasswordChecks) async throws -> RouteGuard {
        let reloadFailed: @Sendable (String, Error) -> Void = { path, error in
            logger.error("could not re-read \(path), keeping its previous contents: \(error)", metadata: ["route": "\(route.path)"])
        }
        var checker: Checker?
        switch route.auth?.method {
        case nil:
            break
        case .bearerTokens(let file):
            checker = .tokens(try WatchedFile(path: file, parse: { BearerTokens(file: $0) }, onReloadError: reloadFailed))
        case .bearerTokensFromEnvironment(let variable):
            let tokens = BearerTokens(list: ProcessInfo.processInfo.environment[variable] ?? "")
            guard tokens.count > 0 else { throw ConfigurationError(key: "route \(route.path) auth.bearer_tokens_env", message: "environment variable \(variable) holds no token") }
            checker = .fixedTokens(tokens)
        case .basic(let file):
            checker = .htpasswd(try WatchedFile(path: file, parse: { try Htpasswd(file: $0) }, onReloadError: reloadFailed))
        case .jwt(let settings):
            checker = .jwt(try await JWTVerifier.make(settings, logger: logger))
        case .http(let settings):
            checker = .http(AuthCallout(settings, route: route.path, logger: logger))
        }
        var targetMap: WatchedFile<[String: String]>?
        if let file = route.targets?.tokenFile {
            targetMap = try WatchedFile(path: file, parse: { try TargetTokenFile.parse($0) }, onReloadError: reloadFailed)
        }
        return RouteGuard(route: route, checker: checker, targetMap: targetMap, passwordChecks: passwordChecks)
    }

    // MARK: Authentication

    /// Checks the credential (or asks the auth service about `request`); fails with a 401 (none or
    /// wrong), a 403 (valid, but not for this route), or what the auth service said.
    func authenticate(_ credential: Credential?, request: UpgradeRequest, on eventLoop: EventLoop) -> EventLoopFuture<Identity> {
        guard let checker = self.checker else { return eventLoop.makeSucceededFuture(Identity()) }
        if case .http(let callout) = checker {
            return callout.check(request, on: eventLoop).map { verdict in
                Identity(name: verdict.user ?? "auth", user: verdict.user, claimedTarget: verdict.target,
                         expires: verdict.expiresAt.flatMap(Self.deadline(at:)), extraHeaders: verdict.headers)
            }
        }
        guard let credential else { return eventLoop.makeFailedFuture(self.unauthorized("no credentials")) }
        switch (checker, credential) {
        case (.tokens(let file), .token(let token)):
            guard let lease = TokenLease(file: file, token: token) else { return eventLoop.makeFailedFuture(self.unauthorized("unknown bearer token")) }
            return eventLoop.makeSucceededFuture(Identity(name: "token", lease: lease))
        case (.fixedTokens(let tokens), .token(let token)):
            return tokens.contains(token) ? eventLoop.makeSucceededFuture(Identity(name: "token")) : eventLoop.makeFailedFuture(self.unauthorized("unknown bearer token"))
        case (.htpasswd(let file), .basic(let user, let password)):
            return self.passwordChecks.check(user: user, password: password, against: file.value, on: eventLoop).flatMapThrowing { valid in
                guard valid else { throw self.unauthorized("wrong user name or password") }
                return Identity(name: user, user: user)
            }
        case (.jwt(let verifier), .token(let token)):
            let route = self.routePath
            return eventLoop.makeFutureWithTask {
                try await verifier.verify(token)
            }.flatMapErrorThrowing { error in
                throw self.unauthorized("\(error)")
            }.flatMapThrowing { claims in
                if let routes = claims.routes, !routes.contains(route) {
                    throw HTTPRefusal(.forbidden, "JWT does not grant route \(route) (it grants \(routes.joined(separator: ", ")))", closesConnection: true, label: "auth_route")
                }
                return Identity(name: claims.subject ?? "jwt", user: claims.subject, claims: claims.texts, claimedTarget: claims.target,
                                expires: claims.expires.flatMap(Self.deadline(at:)))
            }
        case (.http, _):
            return eventLoop.makeFailedFuture(self.unauthorized("unreachable: the auth service is asked above"))
        case (.htpasswd, .token):
            return eventLoop.makeFailedFuture(self.unauthorized("a token was presented where Basic credentials are needed"))
        case (_, .basic):
            return eventLoop.makeFailedFuture(self.unauthorized("Basic credentials were presented where a token is needed"))
        }
    }

    /// A wall-clock instant on the monotonic clock sessions are timed with; nil beyond a century
    /// (a token's `exp` is a number it chose: it must not overflow the conversion).
    static func deadline(at date: Date) -> NIODeadline? {
        let seconds = date.timeIntervalSinceNow
        guard seconds.isFinite, seconds < 100 * 365 * 86_400 else { return nil }
        return NIODeadline.now() + .nanoseconds(Int64((max(0, seconds) * 1e9).rounded()))
    }

    private func unauthorized(_ reason: String) -> HTTPRefusal {
        var headers = HTTPHeaders()
        if case .htpasswd = self.checker {
            headers.add(name: "WWW-Authenticate", value: "Basic realm=\"wsgate\", charset=\"UTF-8\"")
        } else {
            headers.add(name: "WWW-Authenticate", value: "Bearer realm=\"wsgate\"")
        }
        return HTTPRefusal(.unauthorized, reason, headers: headers, closesConnection: true, label: "auth")
    }

    // MARK: Dynamic targets

    /// The backend for a route with `targets`, from the token map or the JWT's target claim, only
    /// if an `allowed` pattern covers it.
    func resolveTarget(token: String?, identity: Identity) throws(HTTPRefusal) -> BackendURL? {
        guard let targets = self.targets else { return nil }
        let text: String
        if targets.fromJWT {
            guard let claimed = identity.claimedTarget else { throw HTTPRefusal(.forbidden, "the credential names no target", closesConnection: true, label: "target") }
            text = claimed
        } else {
            guard let token, !token.isEmpty else { throw HTTPRefusal(.forbidden, "no target token", closesConnection: true, label: "target") }
            guard let mapped = self.targetMap?.value[token] else { throw HTTPRefusal(.forbidden, "unknown target token", closesConnection: true, label: "target") }
            text = mapped
        }
        guard let backend = TargetTokenFile.backend(text) else {
            throw HTTPRefusal(.forbidden, "target '\(text)' is not host:port, unix_socket:PATH or a ws://, wss:// or tcp:// URL", closesConnection: true, label: "target")
        }
        let hostPort: (String, Int)
        switch backend {
        case .tcp(let host, let port): hostPort = (host, port)
        case .webSocket(let host, let port, _, _, _): hostPort = (host, port)
        case .unix(let path): return .unix(path: try Self.confined(path, to: targets.unixDirectory))
        }
        guard targets.allowed.contains(where: { $0.matches(host: hostPort.0, port: hostPort.1) }) else {
            throw HTTPRefusal(.forbidden, "target \(backend) is not in the route's allowed targets", closesConnection: true, label: "target")
        }
        return backend
    }
}

extension RouteGuard {
    /// A `unix_socket:` target's real path, if it is inside `directory`'s: symbolic links and `..`
    /// are resolved first (the socket's own, when it exists; else its directory's), so no spelling
    /// reaches a socket elsewhere.
    static func confined(_ path: String, to directory: String?) throws(HTTPRefusal) -> String {
        guard let directory else {
            throw HTTPRefusal(.forbidden, "unix_socket: targets need targets.unix_directory", closesConnection: true, label: "target")
        }
        guard path.hasPrefix("/"), let root = Self.realPath(directory) else {
            throw HTTPRefusal(.forbidden, "unix_socket: target '\(path)' is not an absolute path", closesConnection: true, label: "target")
        }
        let resolved: String?
        if let whole = Self.realPath(path) {
            resolved = whole
        } else {
            let url = URL(fileURLWithPath: path)
            let name = url.lastPathComponent
            resolved = name == ".." || name == "." ? nil : Self.realPath(url.deletingLastPathComponent().path).map { "\($0)/\(name)" }
        }
        guard let resolved, resolved.hasPrefix(root.hasSuffix("/") ? root : root + "/") else {
            throw HTTPRefusal(.forbidden, "unix_socket: target '\(path)' is outside targets.unix_directory", closesConnection: true, label: "target")
        }
        return resolved
    }

    private static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}

/// websockify's token file: `token: host:port` per line (`#` comments, blank lines ignored);
/// `token: unix_socket:/path` for a unix socket, as websockify's TokenFile reads it.
enum TargetTokenFile {
    struct ParseError: Error, CustomStringConvertible {
        var line: Int
        var description: String { "line \(self.line): expected 'token: host:port'" }
    }

    static func parse(_ text: String) throws -> [String: String] {
        var map: [String: String] = [:]
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.trimmingWhitespace()
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let colon = line.firstIndex(of: ":") else { throw ParseError(line: index + 1) }
            let token = line[..<colon].trimmingWhitespace()
            let target = line[line.index(after: colon)...].trimmingWhitespace()
            guard !token.isEmpty, !target.isEmpty else { throw ParseError(line: index + 1) }
            map[token] = target
        }
        return map
    }

    /// `host:port` (a TCP service), `unix_socket:/path`, or a `tcp://`, `ws://`, `wss://` URL.
    static func backend(_ text: String) -> BackendURL? {
        if text.hasPrefix("unix_socket:") {
            let path = String(text.dropFirst("unix_socket:".count)).trimmingWhitespace()
            return path.isEmpty ? nil : .unix(path: path)
        }
        if text.contains("://") {
            return try? BackendURL(parsing: text)
        }
        return try? BackendURL(parsing: "tcp://" + text)
    }
}

/// Password hashing runs on threads of its own, a bounded number at a time, and remembers recent
/// successes, so a browser reconnecting does not pay bcrypt again and a flood of guesses cannot
/// queue unbounded work.
final class PasswordChecks: Sendable {
    static let maxInFlight = 32
    static let rememberedSuccesses = 1024

    /// Not NIO's shared blocking pool: a check costs bcrypt's tens to hundreds of milliseconds, and
    /// a flood of wrong passwords queued there delayed every static file lookup and read behind it
    /// (2 ms → 12 s seen). Half the cores, so hashing never takes them all; it lives as long as the
    /// process, as the shared pool does.
    static let hashingPool: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: max(1, System.coreCount / 2))
        pool.start()
        return pool
    }()

    private let pool: NIOThreadPool
    private let inFlight = NIOLockedValueBox(0)
    /// SHA-256 of user, password and stored hash → success (a changed file changes the key).
    private let remembered = NIOLockedValueBox(Set<[UInt8]>())

    init(pool: NIOThreadPool = PasswordChecks.hashingPool) {
        self.pool = pool
    }

    func check(user: String, password: String, against file: Htpasswd, on eventLoop: EventLoop) -> EventLoopFuture<Bool> {
        let key = file.cacheKey(user: user, password: password)
        if let key, self.remembered.withLockedValue({ $0.contains(key) }) { return eventLoop.makeSucceededFuture(true) }
        let admitted = self.inFlight.withLockedValue { count -> Bool in
            guard count < Self.maxInFlight else { return false }
            count += 1
            return true
        }
        guard admitted else {
            return eventLoop.makeFailedFuture(HTTPRefusal(.serviceUnavailable, "too many password checks in progress", headers: ["Retry-After": "1"], closesConnection: true, label: "auth_busy"))
        }
        return self.pool.runIfActive(eventLoop: eventLoop) {
            file.verify(user: user, password: password)
        }.always { _ in
            self.inFlight.withLockedValue { $0 -= 1 }
        }.map { valid in
            if valid, let key {
                self.remembered.withLockedValue { set in
                    if set.count >= Self.rememberedSuccesses { set.removeAll() }
                    set.insert(key)
                }
            }
            return valid
        }
    }
}
