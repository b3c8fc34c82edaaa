import ChildProcesses
import Foundation
import NIOCore
import NIOPosix

/// The proxy being measured: a wsgate child process the bench starts (and stops), or any proxy
/// already running, given by port and, for CPU and memory figures, by process id.
final class GatewayUnderTest {
    let port: Int
    let pid: Int32?
    private let process: ChildProcess?
    /// The configuration and log files it was started with, removed when it stops.
    private let files: [URL]

    private init(port: Int, pid: Int32?, process: ChildProcess?, files: [URL] = []) {
        self.port = port
        self.pid = pid
        self.files = files
        self.process = process
    }

    static func attach(port: Int, pid: Int32?) -> GatewayUnderTest {
        GatewayUnderTest(port: port, pid: pid, process: nil)
    }

    /// Starts `binary` with one route to `backend` and waits until it accepts connections.
    /// `compression`: the route's `compression:` value in YAML (`on`, `{server_no_context_takeover: true}`, …).
    /// `routeKeys`: more YAML keys for the route (`framing: lines`), one per line.
    static func launch(binary: String, backend: String, threads: Int, cpu: Int?, compression: String? = nil, routeKeys: [String] = []) async throws -> GatewayUnderTest {
        let port = try await Self.freePort()
        var arguments = ["--listen", "127.0.0.1:\(port)", "--route", "/=\(backend)", "--threads", "\(threads)", "--log-level", "warning"]
        var files: [URL] = []
        if compression != nil || !routeKeys.isEmpty {
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("wsgate-bench-\(port).yaml")
            let keys = (compression.map { ["compression: \($0)"] } ?? []) + routeKeys
            let yaml = "listeners:\n  - address: \"127.0.0.1:\(port)\"\nroutes:\n  - path: /\n    backend: \(backend)\n" + keys.map { "    \($0)\n" }.joined()
            try yaml.write(to: file, atomically: true, encoding: .utf8)
            files.append(file)
            arguments = ["--config", file.path, "--threads", "\(threads)", "--log-level", "warning"]
        }
        return try await Self.start(binary, arguments, port: port, cpu: cpu, files: files)
    }

    /// HAProxy in front of the WebSocket echo on `backendPort`, as the shared harness runs it (one
    /// thread, one process, HTTP mode, no logging); with `http2` its listener speaks cleartext
    /// HTTP/2 (prior knowledge) and takes WebSockets over RFC 8441's extended CONNECT.
    static func launchHAProxy(backendPort: Int, http2: Bool, cpu: Int?) async throws -> GatewayUnderTest {
        let port = try await Self.freePort()
        let configuration = """
            global
                nbthread 1
                maxconn 9800
            defaults
                mode http
                timeout connect 5s
                timeout client 60s
                timeout server 60s
                timeout tunnel 1h
            frontend ws_in
                bind 127.0.0.1:\(port)\(http2 ? " proto h2" : "")
                default_backend ws_out
            backend ws_out
                server echo 127.0.0.1:\(backendPort)

            """
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("wsgate-bench-haproxy-\(port).cfg")
        try configuration.write(to: file, atomically: true, encoding: .utf8)
        guard let binary = ["/usr/sbin/haproxy", "/usr/local/sbin/haproxy", "/usr/bin/haproxy"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw BenchError("--haproxy: no haproxy binary (apt-get install haproxy)")
        }
        return try await Self.start(binary, ["-db", "-f", file.path], port: port, cpu: cpu, files: [file])
    }

    /// Starts the proxy (pinned to `cpu` with taskset) and waits until it accepts connections on `port`.
    private static func start(_ binary: String, _ arguments: [String], port: Int, cpu: Int?, files: [URL]) async throws -> GatewayUnderTest {
        var executable = binary
        var arguments = arguments
        if let cpu {
            executable = "/usr/bin/taskset"
            arguments = ["-c", "\(cpu)", binary] + arguments
        }
        // Its warnings go to a log file; an early exit shows its last lines.
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("wsgate-bench-\(port).log")
        try? FileManager.default.removeItem(at: log)
        let process = try await ChildProcess.start(executable, arguments, log: log)
        let gateway = GatewayUnderTest(port: port, pid: process.pid, process: process, files: files + [log])
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline {
            if try await Self.accepts(port: port) { return gateway }
            guard process.isRunning else {
                let output = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
                gateway.stop()
                throw BenchError("\(binary) exited with status \(process.terminationStatus ?? -1): \(output.suffix(500))")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        gateway.stop()
        throw BenchError("\(binary) did not accept connections on port \(port) within 15 s")
    }

    /// SIGTERM, then waits (up to the gateway's 10 s drain and a little more) for it to exit.
    func stop() {
        defer { for file in self.files { try? FileManager.default.removeItem(at: file) } }
        guard let process, process.isRunning else { return }
        process.signal(SIGTERM)
        let deadline = NIODeadline.now() + .seconds(12)
        while process.isRunning && NIODeadline.now() < deadline { usleep(10_000) }
        process.signal(SIGKILL)  // only if it is still running
    }

    /// CPU seconds the process has used so far (user + system, all threads).
    func cpuSeconds() -> Double? {
        guard let pid, let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // After the command name: state is field 3, utime 14 and stime 15 (1-based, /proc/PID/stat).
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// Resident memory in KiB.
    func residentKiB() -> Int? {
        guard let pid, let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }) else { return nil }
        return Int(line.split(separator: " ").dropFirst().first ?? "")
    }

    private static func freePort() async throws -> Int {
        let group = MultiThreadedEventLoopGroup.singleton
        let channel = try await ServerBootstrap(group: group).bind(host: "127.0.0.1", port: 0).get()
        let port = channel.localAddress?.port ?? 0
        try await channel.close()
        return port
    }

    private static func accepts(port: Int) async throws -> Bool {
        do {
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connect(host: "127.0.0.1", port: port).get()
            try? await channel.close()
            return true
        } catch {
            return false
        }
    }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
