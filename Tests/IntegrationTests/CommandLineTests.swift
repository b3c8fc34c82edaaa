import Foundation
import Testing

@Suite struct CommandLineTests {
    @Test func checkAcceptsAValidFileAndNamesTheProblemInABadOne() async throws {
        let directory = FileManager.default.temporaryDirectory
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
        #expect(ok.output.contains("drain_timeout=10"), "\(ok.output)")

        let failed = try await GatewayProcess.run(["check", bad.path])
        #expect(failed.status == 2)
        #expect(failed.output.contains("\(bad.path):5:"))
        #expect(failed.output.contains("routes[0].backend"))

        let runBad = try await GatewayProcess.run(["--config", bad.path])
        #expect(runBad.status == 2)
        #expect(runBad.output.contains("unsupported backend scheme"))
    }
}
