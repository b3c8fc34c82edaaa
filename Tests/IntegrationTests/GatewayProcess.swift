import ChildProcesses
import Foundation
import NIOCore

/// The built `wsgate` executable run as a child process, for what must be measured on the gateway
/// alone (its memory) or tested as a user runs it (flags, exit codes).
final class GatewayProcess: @unchecked Sendable {
    let process: ChildProcess
    let logFile: URL
    private(set) var port = 0
    /// Files made for this process (its configuration), removed by `stop()`.
    var removesOnStop: [URL] = []

    /// The executable next to the test bundle (`swift build` puts both in the same directory).
    static var executable: URL {
        get throws { try self.locate("wsgate") }
    }

    static func locate(_ name: String) throws -> URL {
        let testBinary = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        var directory = testBinary.deletingLastPathComponent()
        if directory.lastPathComponent == "MacOS" {  // an .xctest bundle on Darwin
            directory = directory.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        }
        let candidate = directory.appendingPathComponent(name)
        guard FileManager.default.isExecutableFile(atPath: candidate.path) else {
            throw TestTimeout(what: "the \(name) executable at \(candidate.path) (run `swift build` before `swift test`)")
        }
        return candidate
    }

    static func run(_ arguments: [String]) async throws -> (status: Int32, output: String) {
        try await Peers.run(try self.executable, arguments)
    }

    /// `executable`: another product built next to the tests (the demo backend).
    ///
    /// A 60 s handshake timeout unless `environment` sets one (as ``GatewayFixture/patientServer``
    /// does in process): with both cores busy beside the suite, this test process has stalled for
    /// over 10 s between a client's connect and its request, and the gateway — running on time in
    /// its own process — rightly closed the connection (two tests failed so in one hogged run).
    init(executable: String = "wsgate", arguments: [String], environment: [String: String] = [:]) async throws {
        self.logFile = Scratch.path("wsgate", suffix: ".log")
        _ = FileManager.default.createFile(atPath: self.logFile.path, contents: nil)
        var environment = environment
        if executable == "wsgate", environment["WSGATE_HANDSHAKE_TIMEOUT"] == nil { environment["WSGATE_HANDSHAKE_TIMEOUT"] = "60" }
        self.process = try await ChildProcess.start(try Self.locate(executable).path, arguments, environment: environment, log: self.logFile)
    }

    /// Waits for the "listening" log line and takes the port from it.
    func waitUntilListening() async throws {
        let deadline = NIODeadline.now() + .seconds(20)
        while NIODeadline.now() < deadline {
            let log = self.log
            // Text (`address=…`) or JSON (`"address":"…"`) log lines.
            if let range = log.range(of: #"address"?[=:]"?127\.0\.0\.1:(\d+)"#, options: .regularExpression) {
                self.port = Int(log[range].split(separator: ":").last!)!
                return
            }
            if !self.process.isRunning { break }
            try await Task.sleep(nanoseconds: 20_000_000)
        }
        throw TestTimeout(what: "wsgate to listen; log:\n\(self.log)")
    }

    /// The port of the listener logged for `host` (e.g. one a reload opened).
    func listeningPort(host: String) -> Int? {
        guard let range = self.log.range(of: "address\"?[=:]\"?\(host.replacingOccurrences(of: ".", with: "\\.")):(\\d+)", options: .regularExpression) else { return nil }
        return Int(self.log[range].split(separator: ":").last!)
    }

    /// The admin listener's port, once its "admin listening" line is in the log.
    func adminPort() async throws -> Int {
        var port: Int?
        try await eventually("the admin listener") {
            let line = self.log.split(separator: "\n").first { $0.contains("admin listening") } ?? ""
            port = Int(line.split(separator: ":").last?.prefix { $0.isNumber } ?? "")
            return port != nil
        }
        return port!
    }

    /// `wsgate-demo-backend` on free ports, and its services' ports by the first word of the line
    /// that announces each ("websocket", "console-a", "console-b", and "tcp" with `tcpEcho`).
    static func demoBackend(tcpEcho: Bool = false) async throws -> (process: GatewayProcess, ports: [String: Int]) {
        let service = try await GatewayProcess(executable: "wsgate-demo-backend", arguments: ["--ws-port", "0", "--console-a-port", "0", "--console-b-port", "0"] + (tcpEcho ? ["--echo-port", "0"] : []))
        var ports: [String: Int] = [:]
        do {
            try await eventually("the demo services' ports", timeout: .seconds(20)) {
                // "console-a on tcp://127.0.0.1:PORT", "websocket echo on ws://127.0.0.1:PORT/"
                for line in service.log.split(separator: "\n") {
                    guard let name = line.split(separator: " ").first, let colon = line.lastIndex(of: ":"),
                          let port = Int(line[line.index(after: colon)...].prefix { $0.isNumber }) else { continue }
                    ports[String(name)] = port
                }
                return ports.count == (tcpEcho ? 4 : 3)
            }
        } catch {
            service.stop()
            throw error
        }
        return (service, ports)
    }

    func signal(_ signal: Int32) {
        self.process.signal(signal)
    }

    /// The exit status, once the process has exited within `timeout`; nil if it is still running.
    func waitForExit(timeout: TimeAmount) async throws -> Int32? {
        let deadline = NIODeadline.now() + timeout
        while self.process.isRunning {
            if NIODeadline.now() > deadline { return nil }
            try await Task.sleep(nanoseconds: 20_000_000)
        }
        return self.process.terminationStatus
    }

    var log: String { (try? String(contentsOf: self.logFile, encoding: .utf8)) ?? "" }

    /// Resident memory of the gateway process, from /proc.
    var residentBytes: Int { self.statusBytes("VmRSS:") }

    /// The most resident memory the gateway process has had (the kernel's high-water mark).
    var peakResidentBytes: Int { self.statusBytes("VmHWM:") }

    /// Seconds the gateway's threads have run and have waited for a core (the kernel's
    /// `/proc/PID/task/*/schedstat`): a slow answer on a busy machine says which it was. Threads
    /// that exited between two readings drop out of the sum (a short-lived one can make a delta negative).
    var schedulerSeconds: (running: Double, waiting: Double) {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(self.process.pid)/task")) ?? []
        return tasks.reduce(into: (running: 0, waiting: 0)) { total, task in
            let fields = Self.readWhole("/proc/\(self.process.pid)/task/\(task)/schedstat").split(separator: " ").compactMap { Double($0) }
            guard fields.count >= 2 else { return }
            total.running += fields[0] / 1e9
            total.waiting += fields[1] / 1e9
        }
    }

    /// The host's count of SYNs sent again (`TcpExt: TCPSynRetrans` in /proc/net/netstat, every
    /// process's): a connect slower than a second on loopback was dropped, or its process was late.
    static var synRetransmits: Int {
        let lines = Self.readWhole("/proc/net/netstat").split(separator: "\n").filter { $0.hasPrefix("TcpExt:") }
        guard lines.count == 2, let column = lines[0].split(separator: " ").firstIndex(of: "TCPSynRetrans") else { return 0 }
        let values = lines[1].split(separator: " ")
        return column < values.count ? Int(values[column]) ?? 0 : 0
    }

    private func statusBytes(_ field: String) -> Int {
        let status = Self.readWhole("/proc/\(self.process.pid)/status")
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(field) }),
              let kib = Int(line.split(separator: " ").dropFirst().first ?? "") else { return 0 }
        return kib * 1024
    }

    /// The gateway's TCP sockets in CLOSE-WAIT (the peer closed, the gateway never did).
    var closeWaitSockets: Int {
        self.countSockets { state, _ in state == "08" }
    }

    /// The gateway's TCP sockets connected to `port` (any state), e.g. a service's.
    func sockets(toPort port: Int) -> Int {
        self.countSockets { _, remotePort in remotePort == port }
    }

    /// One line of /proc/PID/net/tcp or tcp6: the endpoints (address as /proc writes it, "0100007F"
    /// for 127.0.0.1, and port), the state (hex, "01" established, "06" time-wait, "08" close-wait),
    /// the timer ("02:00000BB8": the keepalive timer, due in 0xBB8 ticks of 1/100 s; "00:…" none)
    /// and the socket's inode.
    struct TCPSocket: CustomStringConvertible {
        var localAddress: Substring = ""
        var localPort: Int?
        var remoteAddress: Substring = ""
        var remotePort: Int?
        var state: Substring
        var timer: Substring = ""
        var inode: Substring

        /// This socket is `local` → `remote`, both on 127.0.0.1.
        func isLoopback(localPort: Int, remotePort: Int) -> Bool {
            self.localAddress == "0100007F" && self.remoteAddress == "0100007F" && self.localPort == localPort && self.remotePort == remotePort
        }

        var description: String { "\(self.localAddress):\(self.localPort ?? -1)->\(self.remoteAddress):\(self.remotePort ?? -1) state \(self.state)" }
    }

    /// This namespace's established connections from 127.0.0.1 to 127.0.0.1:`port` (a gateway's to
    /// its backend at `port`, when only that gateway connects to it).
    static func establishedLoopback(toPort port: Int) -> [TCPSocket] {
        Self.tcpSockets("self").filter { $0.localAddress == "0100007F" && $0.remoteAddress == "0100007F" && $0.remotePort == port && $0.state == "01" }
    }

    /// Every TCP socket in `pid`'s network namespace ("self" for this process), IPv4 and IPv6, each
    /// once: the kernel writes these tables a page per read and a socket can land on two pages when
    /// the table changes in between (one socket was counted twice so, in a CI-like run).
    static func tcpSockets(_ pid: String) -> [TCPSocket] {
        var seen = Set<String>()
        return Self.readTCPTables(pid).filter { seen.insert("\($0.description) \($0.inode)").inserted }
    }

    private static func readTCPTables(_ pid: String) -> [TCPSocket] {
        ["tcp", "tcp6"].flatMap { table in
            Self.readWhole("/proc/\(pid)/net/\(table)").split(separator: "\n").dropFirst().compactMap { line -> TCPSocket? in
                let fields = line.split(separator: " ")
                guard fields.count > 9 else { return nil }
                let address = { (endpoint: Substring) in endpoint.split(separator: ":").first ?? "" }
                let port = { (endpoint: Substring) in endpoint.split(separator: ":").last.flatMap { Int($0, radix: 16) } }
                return TCPSocket(localAddress: address(fields[1]), localPort: port(fields[1]), remoteAddress: address(fields[2]), remotePort: port(fields[2]),
                                 state: fields[3], timer: fields[5], inode: fields[9])
            }
        }
    }

    /// The gateway's socket descriptors' inodes (/proc/PID/fd) looked up among its TCP sockets;
    /// `match` gets the state and the remote port.
    private func countSockets(_ match: (Substring, Int?) -> Bool) -> Int {
        self.ownTCPSockets().filter { match($0.state, $0.remotePort) }.count
    }

    /// The TCP sockets this gateway holds (the namespace's table lists every process's).
    func ownTCPSockets() -> [TCPSocket] {
        let pid = self.process.pid
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []
        let inodes = Set(fds.compactMap { fd -> Substring? in
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(fd)"),
                  target.hasPrefix("socket:[") else { return nil }
            return target.dropFirst(8).dropLast()
        })
        return Self.tcpSockets("\(pid)").filter { inodes.contains($0.inode) }
    }

    /// A /proc file to its end: it reports size 0 and gives a page per read, and Foundation's
    /// `String(contentsOfFile:)` stopped after the first page (27 sockets of /proc/net/tcp).
    static func readWhole(_ path: String) -> String {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return "" }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count <= 0 { break }
            bytes += chunk[..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// SIGKILL, without waiting for the exit: `stop()` runs in the `defer` of async tests, and
    /// blocking there (the old drain-then-wait took up to 3 s, `waitUntilExit` longer) held one of
    /// the few threads every async test shares — a stall of seconds in which other tests' idle
    /// connections hit their gateway's timeouts. Tests of the drain send SIGTERM themselves
    /// (``signal(_:)``, ``waitForExit(timeout:)``).
    func stop() {
        self.process.signal(SIGKILL)
        try? FileManager.default.removeItem(at: self.logFile)
        for file in self.removesOnStop { try? FileManager.default.removeItem(at: file) }
    }
}
