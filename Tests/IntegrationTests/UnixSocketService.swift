import ChildProcesses
import Foundation
import NIOConcurrencyHelpers

/// A real service (mosquitto, TigerVNC's Xvnc) run as a child process and listening on a unix
/// socket in a fresh directory of its own: no port to pick or collide on. Its output goes to
/// `service.log` in that directory, which ``stop()`` removes.
final class UnixSocketService: @unchecked Sendable {
    let directory: URL
    private let process = NIOLockedValueBox<ChildProcess?>(nil)
    var socket: String { self.directory.appendingPathComponent("service.sock").path }

    /// `arguments` gets the service (its ``directory`` and ``socket``) and may write files there.
    /// `writableByAll`: a service started as root that binds as its own user (mosquitto) needs it.
    static func start(_ executable: String, package: String, writableByAll: Bool = false,
                      arguments: (UnixSocketService) throws -> [String]) async throws -> UnixSocketService {
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw TestTimeout(what: "\(executable) to be installed (Debian's \(package); scripts/test.sh installs it)")
        }
        let service = try UnixSocketService(writableByAll: writableByAll)
        do {
            let log = service.directory.appendingPathComponent("service.log")
            let process = try await ChildProcess.start(executable, try arguments(service), log: log)
            service.process.withLockedValue { $0 = process }
            try await eventually("\(executable) to listen on \(service.socket)") { FileManager.default.fileExists(atPath: service.socket) }
            return service
        } catch {
            service.stop()
            throw error
        }
    }

    private init(writableByAll: Bool) throws {
        self.directory = Scratch.path("wsgate-service")
        try FileManager.default.createDirectory(at: self.directory, withIntermediateDirectories: true,
                                                attributes: writableByAll ? [.posixPermissions: 0o777] : nil)
    }

    /// SIGKILL, without waiting (see ``GatewayProcess/stop()``), then the directory goes.
    func stop() {
        self.process.withLockedValue { $0 }?.signal(SIGKILL)
        try? FileManager.default.removeItem(at: self.directory)
    }
}
