import ChildProcesses
import Foundation
import Testing

/// Real protocol peers run as child processes: Python `h2` (from the project's venv, made by
/// `scripts/setup-python.sh`) and Debian's `nghttp`.
enum Peers {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static var python: URL {
        get throws {
            let python = self.packageRoot.appendingPathComponent(".venv-conformance/bin/python")
            guard FileManager.default.isExecutableFile(atPath: python.path) else {
                throw TestTimeout(what: "the Python venv at \(python.path) (run scripts/setup-python.sh)")
            }
            return python
        }
    }

    static func script(_ name: String) -> String {
        self.packageRoot.appendingPathComponent("Tests/peers/\(name)").path
    }

    /// Runs a program to completion (bounded by `timeout` seconds); returns its status and output.
    static func run(_ executable: URL, _ arguments: [String], timeout: TimeInterval = 60) async throws -> (status: Int32, output: String) {
        // Output goes to a file, not a pipe: read once the program is done.
        let log = Scratch.path("wsgate-peer", suffix: ".log")
        defer { try? FileManager.default.removeItem(at: log) }
        let process = try await ChildProcess.start(executable.path, arguments, log: log)
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning {
            if Date() > deadline {
                process.signal(SIGKILL)
                throw TestTimeout(what: "\(executable.lastPathComponent) \(arguments.joined(separator: " ")):\n\((try? String(contentsOf: log, encoding: .utf8)) ?? "")")
            }
            try await Task.sleep(nanoseconds: 20_000_000)
        }
        return (process.terminationStatus ?? -1, (try? String(contentsOf: log, encoding: .utf8)) ?? "")
    }

    /// The last line of a peer's output that is a JSON object, decoded; the whole output goes into
    /// the test's issue when it is not there.
    static func lastJSON<T: Decodable>(_ type: T.Type, in run: (status: Int32, output: String), from peer: String) throws -> T {
        let line = run.output.split(separator: "\n").last { $0.hasPrefix("{") } ?? ""
        do {
            return try JSONDecoder().decode(type, from: Data(line.utf8))
        } catch {
            Issue.record("\(peer): \(run.output)")
            throw error
        }
    }

    static func which(_ name: String) throws -> URL {
        for directory in ["/usr/bin", "/usr/local/bin", "/bin"] {
            let candidate = URL(fileURLWithPath: directory).appendingPathComponent(name)
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        throw TestTimeout(what: "\(name) to be installed (scripts/test.sh installs it)")
    }
}
