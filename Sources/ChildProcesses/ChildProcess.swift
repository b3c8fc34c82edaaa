import Foundation
import NIOConcurrencyHelpers
import Subprocess
#if canImport(System)
import System
#else
import SystemPackage
#endif

/// A program run as a child of this process (the tests' peers and gateways, the bench's gateway),
/// both its output streams appended to a file, started with swift-subprocess. Not Foundation's `Process`: on Linux its `run()` copies each
/// /proc/self/fd entry 256 bytes at a time, past the end of glibc's buffer, and that crashed the
/// whole test process (a segmentation fault, then minutes of backtracing in which every other test
/// timed out) in a CI run of the full suite (swift-corelibs-foundation#5472, fixed after Swift
/// 6.3.1). swift-subprocess closes the child's descriptors with closefrom instead.
public final class ChildProcess: Sendable {
    public let pid: pid_t
    private let exit: NIOLockedValueBox<TerminationStatus?>

    private init(pid: pid_t, exit: NIOLockedValueBox<TerminationStatus?>) {
        self.pid = pid
        self.exit = exit
    }

    /// Starts `executable` and returns once it runs (the task that waits for its exit goes on).
    public static func start(_ executable: String, _ arguments: [String], environment: [String: String] = [:], log: URL) async throws -> ChildProcess {
        let output = try FileDescriptor.open(FilePath(log.path), .writeOnly, options: [.append, .create], permissions: .ownerReadWrite)
        let overrides = Dictionary(uniqueKeysWithValues: environment.compactMap { key, value in Environment.Key(rawValue: key).map { ($0, Optional(value)) } })
        let exit = NIOLockedValueBox<TerminationStatus?>(nil)
        let pid: pid_t = try await withCheckedThrowingContinuation { continuation in
            let waiting = NIOLockedValueBox<CheckedContinuation<pid_t, Error>?>(continuation)
            Task {
                do {
                    let result = try await Subprocess.run(
                        .path(FilePath(executable)), arguments: Arguments(arguments), environment: Environment.inherit.updating(overrides),
                        input: .none,
                        output: .fileDescriptor(output, closeAfterSpawningProcess: false),
                        error: .fileDescriptor(output, closeAfterSpawningProcess: false)
                    ) { execution in
                        waiting.withLockedValue { $0.take() }?.resume(returning: execution.processIdentifier.value)
                    }
                    exit.withLockedValue { $0 = result.terminationStatus }
                } catch {
                    exit.withLockedValue { $0 = .exited(127) }
                    waiting.withLockedValue { $0.take() }?.resume(throwing: error)
                }
                try? output.close()
            }
        }
        return ChildProcess(pid: pid, exit: exit)
    }

    public var isRunning: Bool { self.exit.withLockedValue { $0 } == nil }

    /// The exit code, or 128 + the signal that ended it (as a shell says); nil while it runs.
    public var terminationStatus: Int32? {
        switch self.exit.withLockedValue({ $0 }) {
        case .exited(let code): return code
        case .signaled(let signal): return 128 + signal
        case nil: return nil
        }
    }

    /// Sends `signal` while the process runs (never to a reaped, possibly reused pid).
    public func signal(_ signal: Int32) {
        if self.isRunning { kill(self.pid, signal) }
    }
}
