import Logging
import NIOCore
import NIOHTTP1

/// `/targets/drain` on the admin listener: take a backend target out of service for new sessions
/// and, after a grace, close the sessions it has (1001).
///
/// `POST /targets/drain?target=URL&grace=S` starts a drain (`grace` in seconds, default 0, at most
/// a day); `DELETE /targets/drain?target=URL` lifts it; `GET /targets/drain` lists the targets being
/// drained. `URL` is a backend as the configuration writes it (`tcp://10.0.0.5:5900`, `ws://…`,
/// `unix:/path`, or `host:port` for TCP).
enum TargetsEndpoint {
    static let maxGrace = TimeAmount.hours(24)

    /// nil: not a `/targets` path.
    static func answer(method: HTTPMethod, target: String, drains: TargetDrains, registry: SessionRegistry, logger: Logger,
                       on eventLoop: EventLoop) -> AdminResponse? {
        guard RouteTable.path(ofTarget: target) == "/targets/drain" else { return nil }
        let query = QueryParameters(target: target)
        if method == .GET {
            return AdminResponse(status: .ok, body: "{\"draining\":[" + drains.all.map(JSONString.quoted).joined(separator: ",") + "]}\n")
        }
        guard method == .POST || method == .DELETE else { return .error(.methodNotAllowed, "use POST to drain a target, DELETE to lift a drain, GET to list them") }
        guard let text = query.value("target"), let backend = TargetTokenFile.backend(text) ?? (try? BackendURL(parsing: text)) else {
            return .error(.badRequest, "target must be a backend URL (tcp://host:port, ws://host:port/path, unix:/path) or host:port")
        }
        let name = backend.description
        if method == .DELETE {
            guard drains.lift(name) else { return .error(.notFound, "\(name) is not being drained") }
            logger.notice("target drain lifted", metadata: ["target": "\(name)"])
            return AdminResponse(status: .ok, body: "{\"target\":\(JSONString.quoted(name)),\"draining\":false}\n")
        }
        var grace = TimeAmount.zero
        if let text = query.value("grace") {
            guard let seconds = Double(text), seconds >= 0, seconds <= Double(Self.maxGrace.nanoseconds) / 1e9 else {
                return .error(.badRequest, "grace must be 0 to 86400 seconds")
            }
            grace = .nanoseconds(Int64(seconds * 1e9))
        }
        let started = drains.start(name)
        logger.notice("draining target: no new sessions; live ones close after the grace", metadata: ["target": "\(name)", "grace": "\(grace.prettyDescription)"])
        // Checked again when the grace ends: a drain lifted meanwhile closes nothing.
        eventLoop.scheduleTask(in: grace) {
            guard drains.contains(name) else { return }
            registry.close(backend: name, reason: .targetDrained)
        }
        let body = "{\"target\":\(JSONString.quoted(name)),\"draining\":true,\"grace_s\":\(Double(grace.nanoseconds) / 1e9),\"already\":\(!started)}\n"
        return AdminResponse(status: .accepted, body: body)
    }
}
