import Logging
import Metrics
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// A target's active health check: a TCP connect, or a WebSocket handshake followed by a close,
/// every `interval` (the first one at once), each within `timeout`. Logs when the target goes
/// down or comes back.
final class HealthChecker: Sendable {
    private let target: BackendTarget
    private let settings: HealthCheckSettings
    private let tls: NIOSSLContext?
    private let serverName: String?
    private let logger: Logger
    private let task = NIOLockedValueBox<RepeatedTask?>(nil)
    private let passed: Counter
    private let failed: Counter

    /// nil for a target without active checks.
    init?(target: BackendTarget, tls: NIOSSLContext?, serverName: String?, logger: Logger) {
        guard let settings = target.check else { return nil }
        self.target = target
        self.settings = settings
        self.tls = tls
        self.serverName = serverName
        self.logger = logger
        self.passed = Counter(label: "wsgate_backend_health_checks_total", dimensions: [("target", target.url.description), ("result", "ok")])
        self.failed = Counter(label: "wsgate_backend_health_checks_total", dimensions: [("target", target.url.description), ("result", "failed")])
    }

    func start(on eventLoop: EventLoop) {
        let task = eventLoop.scheduleRepeatedAsyncTask(initialDelay: .zero, delay: self.settings.interval) { _ in
            self.probe(on: eventLoop).always { self.record($0) }.recover { _ in () }
        }
        self.task.withLockedValue { $0 = task }
    }

    func stop() {
        self.task.withLockedValue { $0?.cancel(); $0 = nil }
    }

    private func record(_ result: Result<Void, Error>) {
        switch result {
        case .success: self.passed.increment()
        case .failure: self.failed.increment()
        }
        switch self.target.checked(result) {
        case true?:
            self.logger.notice("backend target is up: \(self.settings.rise) health checks passed", metadata: ["target": "\(self.target.url)"])
        case false?:
            var metadata: Logger.Metadata = ["target": "\(self.target.url)"]
            if case .failure(let error) = result { metadata["error"] = "\(error)" }
            self.logger.warning("backend target is down: \(self.settings.fall) health checks failed", metadata: metadata)
        case nil:
            break
        }
    }

    /// One check. The connection is closed whatever happens.
    func probe(on eventLoop: EventLoop) -> EventLoopFuture<Void> {
        let timeout = self.settings.timeout
        let promise = eventLoop.makePromise(of: Void.self)
        let deadline = eventLoop.scheduleTask(in: timeout) {
            promise.fail(BackendError.timedOut(after: timeout.prettyDescription))
        }
        promise.futureResult.whenComplete { _ in deadline.cancel() }
        let bootstrap = BackendConnector.bootstrap(on: eventLoop, timeout: timeout)
        // `connected`: the connection, closed whatever happens; `checked`: the check passed.
        let connected: EventLoopFuture<Channel>
        let checked: EventLoopFuture<Void>
        switch (self.target.url, self.settings.kind) {
        case (.unix(let path), _):
            connected = bootstrap.connect(unixDomainSocketPath: path)
            checked = connected.map { _ in () }
        case (.tcp(let host, let port), _), (.webSocket(let host, let port, _, _, _), .tcp):
            connected = BackendConnector.connect(bootstrap, host: host, port: port)
            checked = connected.map { _ in () }
        case (.webSocket(let host, let port, let path, let query, let tls), .webSocket(let checkPath)):
            let key = WebSocketAccept.makeKey()
            var headers = BackendRequestHeaders.handshake(host: host, port: port, key: key)
            headers.add(name: "User-Agent", value: "wsgate-health-check")
            let uri = checkPath ?? ((path ?? "/") + (query.map { "?\($0)" } ?? ""))
            let opened = BackendConnector.openWebSocket(bootstrap, on: eventLoop, host: host, port: port, target: uri, headers: headers, key: key,
                                                        tls: tls ? self.tls : nil, serverName: self.serverName, subprotocols: [], offersCompression: false)
            connected = opened.connected
            checked = opened.ready.flatMap { channel, _ in
                // A proper goodbye: 1001 Going Away, masked as a client must.
                var code = channel.allocator.buffer(capacity: 2)
                code.writeInteger(WebSocketCloseCode.goingAway.rawValue)
                return channel.writeAndFlush(FrameEncoder.controlFrame(opcode: .close, payload: code, mask: .random(), allocator: channel.allocator))
            }
        }
        checked.whenComplete { result in
            switch result {
            case .success: promise.succeed(())
            case .failure(let error): promise.fail(BackendConnector.describe(error, timeout: timeout))
            }
        }
        promise.futureResult.whenComplete { _ in connected.whenSuccess { $0.close(promise: nil) } }
        return promise.futureResult
    }
}
