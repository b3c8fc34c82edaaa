import Foundation
import Testing

@Suite struct CommandLineTests {
    @Test func checkAcceptsAValidFileAndNamesTheProblemInABadOne() async throws {
        let directory = Scratch.directory
        let good = directory.appendingPathComponent("wsgate-good-\(UUID().uuidString.prefix(6)).yaml")
        let bad = directory.appendingPathComponent("wsgate-bad-\(UUID().uuidString.prefix(6)).yaml")
        defer {
            try? FileManager.default.removeItem(at: good)
            try? FileManager.default.removeItem(at: bad)
        }
        try "listeners:\n  - address: \"127.0.0.1:8080\"\nroutes:\n  - path: /vnc\n    backend: tcp://127.0.0.1:5900\n".write(to: good, atomically: true, encoding: .utf8)
        try "listeners:\n  - address: \"127.0.0.1:8080\"\nroutes:\n  - path: /vnc\n    backend: ftp://127.0.0.1:21\n".write(to: bad, atomically: true, encoding: .utf8)

        let ok = try await GatewayProcess.run(["check", good.path])
        #expect(ok.status == 0)
        #expect(ok.output.contains("route 0: prefix /vnc -> tcp://127.0.0.1:5900"))
        #expect(!ok.output.contains("never used"))
        #expect(ok.output.contains("drain_timeout=10"), "\(ok.output)")

        let failed = try await GatewayProcess.run(["check", bad.path])
        #expect(failed.status == 2)
        #expect(failed.output.contains("\(bad.path):5:"))
        #expect(failed.output.contains("routes[0].backend"))

        // The effective table in evaluation order, with the route no request can reach named.
        try """
            listeners: [{address: "127.0.0.1:8080"}]
            routes:
              - {path: /, backend: "tcp://127.0.0.1:1"}
              - {path: /app, host: app.example.com, backends: ["tcp://127.0.0.1:2", "tcp://127.0.0.1:3"], balance: least_connections}
              - {path: /app, host: APP.example.com, backend: "tcp://127.0.0.1:4"}
              - {path: /, host: "*.example.com", backend: "tcp://127.0.0.1:5"}
            """.write(to: good, atomically: true, encoding: .utf8)
        let table = try await GatewayProcess.run(["check", good.path])
        #expect(table.status == 0)
        let order = table.output.split(separator: "\n").filter { $0.hasPrefix("route ") }.map { $0.prefix(8) }
        #expect(order == ["route 1:", "route 2:", "route 3:", "route 0:"], "\(table.output)")
        #expect(table.output.contains("route 1: host app.example.com prefix /app -> pool[tcp://127.0.0.1:2, tcp://127.0.0.1:3] balance=least_connections"))
        #expect(table.output.contains("warning: route 2 (/app) is never used: route 1 has the same host, match and path and is listed first"))

        let runBad = try await GatewayProcess.run(["--config", bad.path])
        #expect(runBad.status == 2)
        #expect(runBad.output.contains("unsupported backend scheme"))
    }
}
