import NIOCore
import NIOPosix

/// Idle timeouts, client liveness pings, session deadlines and credential checks for every session
/// of one event loop, run by one repeating task on that loop instead of timers per session: an idle
/// session costs a dictionary entry. The task runs only while the loop has such sessions, as often
/// as the most demanding one asks (``SessionLiveness/sweepPeriod(now:)``, 50 ms–1 s).
final class IdleSweeper {
    private let eventLoop: EventLoop
    private var sessions: [ObjectIdentifier: RelaySession] = [:]
    private var task: RepeatedTask?
    private var interval: TimeAmount = .seconds(1)

    /// Thread-local: each event loop thread reads and writes only its own sweeper, so nothing is shared.
    nonisolated(unsafe) private static let perThread = ThreadSpecificVariable<IdleSweeper>()

    /// The sweeper of the calling event loop's thread.
    static func current(on eventLoop: EventLoop) -> IdleSweeper {
        eventLoop.preconditionInEventLoop()
        if let sweeper = self.perThread.currentValue { return sweeper }
        let sweeper = IdleSweeper(eventLoop: eventLoop)
        self.perThread.currentValue = sweeper
        return sweeper
    }

    private init(eventLoop: EventLoop) {
        self.eventLoop = eventLoop
    }

    func add(_ session: RelaySession, period wanted: TimeAmount) {
        self.sessions[ObjectIdentifier(session)] = session
        if self.task == nil || wanted < self.interval {
            self.interval = wanted
            self.task?.cancel()
            // Strong: the sweeper is its thread's for good, and the task is cancelled once it has no session.
            let sweeper = NIOLoopBound(self, eventLoop: self.eventLoop)
            self.task = self.eventLoop.scheduleRepeatedTask(initialDelay: wanted, delay: wanted) { _ in
                sweeper.value.sweep()
            }
        }
    }

    func remove(_ session: RelaySession) {
        self.sessions.removeValue(forKey: ObjectIdentifier(session))
        if self.sessions.isEmpty {
            self.task?.cancel()
            self.task = nil
        }
    }

    private func sweep() {
        let now = NIODeadline.now()
        for session in self.sessions.values {
            session.sweep(at: now)
        }
    }
}
