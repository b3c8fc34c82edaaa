import Logging
import NIOCore

extension BackendConnector {
    /// A pool session: the pool's candidates in order, the next one after each target failure,
    /// until one takes the session, the attempts run out or the pool's connect deadline passes.
    /// Each outcome feeds the target's passive health; an open session counts towards its load.
    /// Called on `eventLoop` (the client's), where every attempt completes.
    static func connect(_ request: UpgradeRequest, pool: BackendPool, drains: TargetDrains, logger: Logger, on eventLoop: EventLoop) -> EventLoopFuture<BackendConnection> {
        let route = request.route.configuration
        // A drained target is never a candidate, not even as the last resort for an unhealthy pool.
        let candidates = pool.candidates(clientAddress: request.clientAddress, head: request.head, excluding: { drains.isDraining($0.url) })
        guard !candidates.isEmpty else {
            return eventLoop.makeFailedFuture(BackendError.draining(pool.targets.count == 1 ? pool.targets[0].url.description : "every target of \(route.path)"))
        }
        let deadline = NIODeadline.now() + pool.settings.deadline(connectTimeout: route.limits.connectTimeout)
        let promise = eventLoop.makePromise(of: BackendConnection.self)
        var tried: [(target: BackendURL, error: BackendError)] = []

        func attempt(_ index: Int) {
            let left = deadline - .now()
            let deadlineReached = left <= .zero
            guard !deadlineReached, index < candidates.count else {
                // One target (the usual route): its own error says it best.
                promise.fail(tried.count == 1 && !deadlineReached ? tried[0].error : BackendError.noTargetLeft(tried: tried, deadlineReached: deadlineReached))
                return
            }
            let target = candidates[index]
            Self.connect(request, to: target.url, timeout: min(route.limits.connectTimeout, left), on: eventLoop).assumeIsolated().whenComplete { result in
                switch result {
                case .success(let connection):
                    target.connectSucceeded()
                    target.sessionOpened()
                    connection.channel.closeFuture.whenComplete { _ in target.sessionClosed() }
                    promise.succeed(connection)
                case .failure(let error):
                    let failure = (error as? BackendError) ?? .unreachable("\(error)")
                    guard failure.isTargetFailure else {
                        target.connectSucceeded()  // it answered: the application said no
                        promise.fail(failure)
                        return
                    }
                    tried.append((target.url, failure))
                    // One-target routes are not "ejected" in any way that matters: the target is tried anyway.
                    if let period = target.connectFailed(failure, at: .now()), pool.targets.count > 1 {
                        logger.warning("backend target ejected for \(period.prettyDescription) after failed connects", metadata: [
                            "route": "\(route.path)", "target": "\(target.url)", "error": "\(failure)",
                        ])
                    }
                    if index + 1 < candidates.count {
                        logger.info("backend target failed, trying the next one", metadata: [
                            "route": "\(route.path)", "target": "\(target.url)", "error": "\(failure)",
                        ])
                    }
                    attempt(index + 1)
                }
            }
        }
        attempt(0)
        return promise.futureResult
    }
}
