import Foundation
import NIOCore
import Testing

/// HTTP/2 clients that start a static download and leave at every moment (before the first chunk is
/// read, mid-file, with a full window), against a `wsgate` process: a gateway that trapped here took
/// every session on the process with it. The process must survive, keep serving a well-behaved
/// client throughout, and close every file it opened.
@Suite(.serialized, .timeLimit(.minutes(3))) struct HTTP2DownloadStormTests {
    static let fileSize = 8 * 1024 * 1024

    /// Descriptors of process `pid` open on `path` (or on anything, with `path` nil).
    static func descriptors(of pid: Int32, to path: String? = nil) -> Int {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []
        guard let path else { return names.count }
        return names.filter { (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\($0)")) == path }.count
    }

    @Test func clientsThatDropDownloadsCannotTakeTheGatewayDown() async throws {
        let base = Scratch.path("wsgate-storm")
        let web = base.appendingPathComponent("web")
        try FileManager.default.createDirectory(at: web, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: base) }
        let file = web.appendingPathComponent("big.bin")
        try Data(repeating: 0x61, count: Self.fileSize).write(to: file)  // the clients check sizes, not bytes
        let certificates = try await TestCertificates.make()
        defer { certificates.remove() }

        let (gateway, _) = try await LifecycleTests.start("storm", """
            listeners:
              - address: "127.0.0.1:0"
              - address: "127.0.0.2:0"
                tls: {certificate: \(certificates.certificate()), key: \(certificates.key())}
            routes:
              - path: /files
                static: \(web.path)
            """)
        defer { gateway.stop() }
        let pid = gateway.process.pid
        // Listeners log "listening" as each binds: the first one's line is all start() waits for.
        try await eventually("the TLS listener on 127.0.0.2") { gateway.listeningPort(host: "127.0.0.2") != nil }
        let tlsPort = try #require(gateway.listeningPort(host: "127.0.0.2"))
        let idle = Self.descriptors(of: pid)
        let resolved = file.resolvingSymlinksInPath().path

        for (host, port, extra) in [("127.0.0.1", gateway.port, [String]()), ("127.0.0.2", tlsPort, ["--tls"])] {
            let run = try await Peers.run(try Peers.python, [
                Peers.script("h2_download_storm.py"), host, String(port), "/files/big.bin", String(Self.fileSize),
                "--clients", "300", "--concurrency", "40",
            ] + extra, timeout: 120)
            #expect(run.status == 0, "\(extra) \(run.output)\n\(gateway.log.suffix(2000))")
            #expect(run.output.contains("healthy_failed=0"), "\(run.output)")
            #expect(gateway.process.isRunning, "wsgate exited: \(gateway.log.suffix(3000))")
            guard gateway.process.isRunning else { return }
        }
        try await eventually("every file the gateway opened is closed", timeout: .seconds(30)) { Self.descriptors(of: pid, to: resolved) == 0 }
        // The clients are gone: their connections too (a listener or two of slack for timing).
        try await eventually("the gateway's descriptors back to \(idle)", timeout: .seconds(30)) { Self.descriptors(of: pid) <= idle + 2 }
    }
}
