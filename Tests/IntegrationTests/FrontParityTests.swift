import DemoBackends
import Foundation
import NIOCore
import NIOPosix
import Testing
@testable import WSGate

/// The same WebSocket requests over HTTP/1.1, h2c and HTTP/2 over TLS get the same answers, the
/// same log lines and the same metrics: admission, limits, refusals and backend failures are decided
/// once, on the shared session path (``WebSocketSessionStart``), whichever front carried them.
@Suite(.serialized, .timeLimit(.minutes(3))) struct FrontParityTests {
    enum Front: String, CaseIterable, Sendable {
        case http1 = "http/1.1", h2c, h2
    }

    /// A request and what every front must answer: 101 over HTTP/1.1 and 200 over HTTP/2 are
    /// both `accepted`.
    struct Case: Sendable {
        var name: String
        var path: String
        var headers: [(String, String)] = []
        var status: Int?  // nil: accepted
    }

    static let accepted = 0

    static let cases: [Case] = [
        Case(name: "session", path: "/ws"),
        Case(name: "no route", path: "/nothing", status: 404),
        Case(name: "no credentials", path: "/auth", status: 401),
        Case(name: "wrong token", path: "/auth", headers: [("authorization", "Bearer wrong")], status: 401),
        Case(name: "right token", path: "/auth", headers: [("authorization", "Bearer s3cret")]),
        Case(name: "foreign origin", path: "/ws", headers: [("origin", "https://evil.example")], status: 403),
        Case(name: "subprotocol not allowed", path: "/chat", headers: [("sec-websocket-protocol", "v2")], status: 400),
        Case(name: "backend down", path: "/down", status: 502),
        Case(name: "too many headers", path: "/ws", headers: (1...12).map { ("x-extra-\($0)", "v") }, status: 431),
    ]

    @Test func everyFrontAnswersAndRecordsTheSame() async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        let certificates = try await TestCertificates.make()
        defer { certificates.remove() }
        let echo = try await WebSocketEchoServer.start(host: "127.0.0.1", port: 0, group: group)
        defer { echo.close(promise: nil) }
        let refusing = try RefusingPort()
        defer { withExtendedLifetime(refusing) {} }
        let deadPort = refusing.port
        let tokens = try SecurityTests.file("s3cret\n")
        defer { try? FileManager.default.removeItem(atPath: tokens) }
        let ws = "ws://127.0.0.1:\(echo.localAddress!.port!)"
        let (gateway, _) = try await LifecycleTests.start("parity", """
            admin: {address: "127.0.0.1:0"}
            limits: {max_header_count: 10}
            listeners:
              - {address: "127.0.0.1:0"}
              - {address: "127.0.0.2:0", tls: {certificate: \(certificates.certificate()), key: \(certificates.key())}}
            routes:
              - {path: /ws, backend: "\(ws)"}
              - {path: /auth, backend: "\(ws)", auth: {bearer_tokens_file: \(tokens)}}
              - {path: /chat, backend: "\(ws)", subprotocols: [v1]}
              - {path: /down, backend: "tcp://127.0.0.1:\(deadPort)"}
            """, arguments: ["--log-level", "info"])
        defer { gateway.stop() }
        try await eventually("the TLS listener") { gateway.listeningPort(host: "127.0.0.2") != nil }
        let tlsPort = try #require(gateway.listeningPort(host: "127.0.0.2"), "\(gateway.log)")
        let adminPort = try await gateway.adminPort()

        var records: [Front: (refusals: [String], metrics: [String: Double])] = [:]
        for front in Front.allCases {
            let logBefore = gateway.log.count
            let metricsBefore = try await Self.refusalMetrics(adminPort, group: group)
            for testCase in Self.cases {
                let status = try await Self.status(of: testCase, over: front, port: front == .h2 ? tlsPort : gateway.port, ca: certificates.ca, group: group)
                #expect(status == (testCase.status ?? Self.accepted), "\(testCase.name) over \(front.rawValue)")
            }
            // The log lines and counters come from the gateway's own loop: give them a moment.
            try await eventually("the refusals to be logged") {
                Self.refusalLines(gateway.log.dropFirst(logBefore)).count >= Self.cases.count { $0.status != nil }
            }
            let metricsAfter = try await Self.refusalMetrics(adminPort, group: group)
            var delta: [String: Double] = [:]
            for (name, value) in metricsAfter where value != metricsBefore[name, default: 0] { delta[name] = value - metricsBefore[name, default: 0] }
            records[front] = (Self.refusalLines(gateway.log.dropFirst(logBefore)), delta)
            let expectedProtocol = front == .http1 ? "http/1.1" : "h2"
            let lines = gateway.log.dropFirst(logBefore).split(separator: "\n").filter { $0.contains("refused") }
            #expect(!lines.isEmpty && lines.allSatisfy { $0.contains("protocol=\(expectedProtocol)") }, "\(front.rawValue): \(lines)")
        }
        let reference = try #require(records[.http1])
        #expect(reference.metrics["wsgate_refused_total{reason=\"backend\",status=\"502\"}"] == 1, "\(reference.metrics)")
        #expect(reference.metrics["wsgate_refused_total{reason=\"header_count\",status=\"431\"}"] == 1, "\(reference.metrics)")
        for front in [Front.h2c, .h2] {
            #expect(records[front]?.refusals == reference.refusals, "\(front.rawValue) logged other refusals than HTTP/1.1")
            #expect(records[front]?.metrics == reference.metrics, "\(front.rawValue) counted other refusals than HTTP/1.1")
        }
    }

    /// The status a front's client sees; `accepted` for a 101 (HTTP/1.1) or a 200 (HTTP/2).
    static func status(of testCase: Case, over front: Front, port: Int, ca: String, group: EventLoopGroup) async throws -> Int {
        switch front {
        case .http1:
            let client = try await TestClient.connect(port: port, group: group)
            defer { Task { await client.close() } }
            try await client.send(TestClient.handshake(path: testCase.path, extra: testCase.headers.map { "\($0.0): \($0.1)" }))
            let status = try await client.readHead().0
            return status == 101 ? Self.accepted : status
        case .h2c, .h2:
            // The authority an HTTP/1.1 test client names as its Host: the same-origin check sees the same.
            let tls = (front == .h2 ? ["--tls", ca] : []) + ["--authority", "gateway.test"]
            let headers = testCase.headers.flatMap { ["--header", "\($0.0):\($0.1)"] }
            let host = front == .h2 ? "127.0.0.2" : "127.0.0.1"  // the TLS listener's address
            let run = try await Peers.run(try Peers.python, [Peers.script("h2_websocket.py"), host, String(port)] + tls + headers + [testCase.path])
            let status = try #require(streamResults(run.output)[testCase.path]?.status.flatMap { Int($0) }, "\(run.output)")
            return status == 200 ? Self.accepted : status
        }
    }

    /// Each "refused ..." log line as status and reason, numbers out (header counts differ by front:
    /// an HTTP/1.1 head carries Upgrade and Connection, an HTTP/2 request does not).
    static func refusalLines(_ log: Substring) -> [String] {
        log.split(separator: "\n").filter { $0.contains("refused") }.map { line in
            let status = line.range(of: #"status=\d+"#, options: .regularExpression).map { String(line[$0]) } ?? "?"
            let reason = line.range(of: #"refused .*$"#, options: .regularExpression).map { String(line[$0]) } ?? String(line)
            return status + " " + reason.replacingOccurrences(of: #"\d+"#, with: "N", options: .regularExpression)
        }.sorted()
    }

    static func refusalMetrics(_ adminPort: Int, group: EventLoopGroup) async throws -> [String: Double] {
        let (_, text) = try await AdminTests.get(adminPort, "/metrics", group: group)
        return AdminTests.samples(text).filter { $0.key.hasPrefix("wsgate_refused_total") }
    }
}
