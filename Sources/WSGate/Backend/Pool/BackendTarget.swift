import Metrics
import NIOConcurrencyHelpers
import NIOCore

/// One target of a pool and what the gateway knows about its health. Shared by every route (and
/// every routing-table version) that names the same URL with the same checks, so a reload keeps
/// the state and a target is probed once.
///
/// A target takes sessions when its active checks say it is up (or it has none) and it is not
/// ejected by passive health.
final class BackendTarget: Sendable {
    /// The target as the admin listener's `/status` shows it.
    struct Snapshot: Sendable, Encodable {
        var url: String
        /// Takes new sessions now: up and not ejected.
        var available: Bool
        /// What the active checks say (always true without them).
        var up: Bool
        var ejectedForSeconds: Double?
        var sessions: Int
        var consecutiveFailures: Int
        var ejections: Int
        var lastError: String?
        var lastCheck: String?
    }

    private struct State {
        var up = true
        var checkSuccesses = 0
        var checkFailures = 0
        var lastCheck: String?
        var consecutiveFailures = 0
        var ejectedUntil: NIODeadline?
        /// Ejections since the last success: each one doubles the next period.
        var ejectionsInARow = 0
        var ejections = 0
        var sessions = 0
        var lastError: String?
    }

    let url: BackendURL
    /// The URL's share of every rendezvous-hash score, computed once.
    let urlHash: UInt64
    let check: HealthCheckSettings?
    let passive: PassiveHealthSettings
    private let state = NIOLockedValueBox(State())
    private let upGauge: Gauge
    private let sessionsGauge: Gauge
    private let ejectionsCounter: Counter
    private let ejectedGauge: Gauge

    init(url: BackendURL, check: HealthCheckSettings?, passive: PassiveHealthSettings) {
        self.url = url
        self.urlHash = BackendPool.fnv1a(url.description)
        self.check = check
        self.passive = passive
        let dimensions = [("target", url.description)]
        self.upGauge = Gauge(label: "wsgate_backend_up", dimensions: dimensions)
        self.sessionsGauge = Gauge(label: "wsgate_backend_sessions", dimensions: dimensions)
        self.ejectionsCounter = Counter(label: "wsgate_backend_ejections_total", dimensions: dimensions)
        self.ejectedGauge = Gauge(label: "wsgate_backend_ejected", dimensions: dimensions)
        self.upGauge.record(1)
        self.sessionsGauge.record(0)
        self.ejectedGauge.record(0)
    }

    /// Whether new sessions may be sent here now.
    func isAvailable(at now: NIODeadline) -> Bool {
        let (available, returned) = self.state.withLockedValue { state -> (Bool, Bool) in
            guard let until = state.ejectedUntil else { return (state.up, false) }
            guard now >= until else { return (false, false) }
            state.ejectedUntil = nil  // back on probation: the next failure ejects it for twice as long
            return (state.up, true)
        }
        if returned { self.ejectedGauge.record(0) }
        return available
    }

    var sessions: Int { self.state.withLockedValue { $0.sessions } }

    // MARK: Passive health (sessions' connects)

    func connectSucceeded() {
        let wasEjected = self.state.withLockedValue { state -> Bool in
            defer {
                state.consecutiveFailures = 0
                state.ejectionsInARow = 0
                state.ejectedUntil = nil
            }
            return state.ejectedUntil != nil
        }
        if wasEjected { self.ejectedGauge.record(0) }
    }

    /// Returns the ejection period when this failure ejected the target.
    func connectFailed(_ error: BackendError, at now: NIODeadline) -> TimeAmount? {
        let passive = self.passive
        let ejected: TimeAmount? = self.state.withLockedValue { state in
            state.consecutiveFailures += 1
            state.lastError = error.description
            // Already ejected (a failure while every target was tried anyway): the period stands.
            if let until = state.ejectedUntil, now < until { return nil }
            // Once back from an ejection the target is on probation: one failure ejects it again.
            guard passive.failures > 0, state.consecutiveFailures >= passive.failures || state.ejectionsInARow > 0 else { return nil }
            let doublings = min(state.ejectionsInARow, 20)
            let period = min(passive.ejectFor * Int64(1 << doublings), passive.maxEjectFor)
            state.ejectedUntil = now + period
            state.ejectionsInARow += 1
            state.ejections += 1
            state.consecutiveFailures = 0
            return period
        }
        if ejected != nil {
            self.ejectionsCounter.increment()
            self.ejectedGauge.record(1)
        }
        return ejected
    }

    func sessionOpened() {
        let count = self.state.withLockedValue { $0.sessions += 1; return $0.sessions }
        self.sessionsGauge.record(count)
    }

    func sessionClosed() {
        let count = self.state.withLockedValue { $0.sessions -= 1; return $0.sessions }
        self.sessionsGauge.record(count)
    }

    // MARK: Active health (checks)

    /// Records one check; returns the new up/down state when this result changed it.
    func checked(_ result: Result<Void, Error>) -> Bool? {
        guard let check = self.check else { return nil }
        let changed: Bool? = self.state.withLockedValue { state in
            switch result {
            case .success:
                state.lastCheck = "ok"
                state.checkFailures = 0
                state.checkSuccesses += 1
                if !state.up && state.checkSuccesses >= check.rise {
                    state.up = true
                    // Back in rotation: passive history starts over.
                    state.consecutiveFailures = 0
                    state.ejectedUntil = nil
                    state.ejectionsInARow = 0
                    return true
                }
            case .failure(let error):
                state.lastCheck = "\(error)"
                state.checkSuccesses = 0
                state.checkFailures += 1
                if state.up && state.checkFailures >= check.fall {
                    state.up = false
                    return false
                }
            }
            return nil
        }
        if let changed { self.upGauge.record(changed ? 1 : 0) }
        return changed
    }

    func snapshot(at now: NIODeadline) -> Snapshot {
        self.state.withLockedValue { state in
            let ejectedFor = state.ejectedUntil.flatMap { $0 > now ? $0 - now : nil }
            return Snapshot(url: self.url.description, available: state.up && ejectedFor == nil, up: state.up,
                            ejectedForSeconds: ejectedFor.map { Double($0.nanoseconds / 1_000_000) / 1000 }, sessions: state.sessions,
                            consecutiveFailures: state.consecutiveFailures, ejections: state.ejections, lastError: state.lastError, lastCheck: state.lastCheck)
        }
    }
}
