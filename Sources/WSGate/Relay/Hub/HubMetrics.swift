import Metrics
import NIOConcurrencyHelpers

/// A route's metrics for held and shared sessions: `wsgate_sessions_held`, `wsgate_share_members`,
/// `wsgate_resumes_total{result}` and `wsgate_share_dropped_total` (members dropped as too slow).
final class HubMetrics: Sendable {
    enum ResumeResult: String, CaseIterable, Sendable {
        case resumed
        /// Another user presented the id (403).
        case otherUser = "other_user"
        /// What the client missed is no longer held, or the session has ended (1011).
        case unavailable
        /// The window passed with no resume.
        case expired
        /// The service said more than `resume.buffer` while the client was away.
        case overflowed
    }

    let held: Meter
    let members: Meter
    let droppedSlow: Counter
    private let results: [ResumeResult: Counter]

    private init(route: String) {
        let dimensions = [("route", route)]
        self.held = Meter(label: "wsgate_sessions_held", dimensions: dimensions)
        self.members = Meter(label: "wsgate_share_members", dimensions: dimensions)
        self.droppedSlow = Counter(label: "wsgate_share_dropped_total", dimensions: dimensions)
        var results: [ResumeResult: Counter] = [:]
        for result in ResumeResult.allCases {
            results[result] = Counter(label: "wsgate_resumes_total", dimensions: dimensions + [("result", result.rawValue)])
        }
        self.results = results
    }

    func resumed(_ result: ResumeResult) {
        self.results[result]?.increment()
    }

    private static let all = NIOLockedValueBox<[String: HubMetrics]>([:])

    static func forRoute(_ route: String) -> HubMetrics {
        self.all.withLockedValue { all in
            if let existing = all[route] { return existing }
            let made = HubMetrics(route: route)
            all[route] = made
            return made
        }
    }
}
