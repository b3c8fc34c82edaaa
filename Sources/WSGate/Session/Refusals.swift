import Logging
import Metrics
import NIOCore

/// `wsgate_refused_total{reason, status}`: every refused handshake or connection.
enum RefusalMetrics {
    static func count(_ label: String, status: Int) {
        Counter(label: "wsgate_refused_total", dimensions: [("reason", label), ("status", String(status))]).increment()
    }
}

extension HTTPRefusal {
    /// The refusal's log line and metric, the same whichever front answers it. `route` once the
    /// request was routed.
    func record(client: String, route: String?, protocol clientProtocol: String, logger: Logger) {
        var metadata: Logger.Metadata = ["client": "\(client)", "status": "\(self.status.code)", "protocol": "\(clientProtocol)"]
        if let route { metadata["route"] = "\(route)" }
        logger.info("refused request: \(self.reason)", metadata: metadata)
        RefusalMetrics.count(self.label, status: Int(self.status.code))
    }

    /// The plain-text body every refusal carries: `<reason phrase>: <reason>`.
    var body: String { self.bodyOverride ?? "\(self.status.reasonPhrase): \(self.reason)\n" }

    /// Too many header fields in a request. Both fronts count what an HTTP/1.1 head would hold:
    /// the header fields, the host (`:authority` on HTTP/2) among them; not the request line.
    static func headerCount(_ count: Int, limit: Int) -> HTTPRefusal? {
        guard count > limit else { return nil }
        return HTTPRefusal(.requestHeaderFieldsTooLarge, "\(count) request headers (limit \(limit))", closesConnection: true, label: "header_count")
    }
}
