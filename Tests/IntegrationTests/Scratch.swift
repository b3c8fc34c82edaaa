import Foundation

/// Where the integration tests put their files (configurations, logs, certificates, sockets): one
/// directory per test process, removed when the process exits. Tests still remove what they made
/// when they can; this catches what a failing test leaves, and a directory left by a killed run is
/// removed by the next one.
enum Scratch {
    static let directory: URL = {
        let base = FileManager.default.temporaryDirectory
        Scratch.removeAbandoned(in: base)
        let directory = base.appendingPathComponent("\(Scratch.prefix)\(getpid())")
        try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        atexit { try? FileManager.default.removeItem(at: Scratch.directory) }
        return directory
    }()

    private static let prefix = "wsgate-tests-"

    /// A path in the scratch directory: `name` with a random part, so parallel tests never share one.
    static func path(_ name: String, suffix: String = "") -> URL {
        Self.directory.appendingPathComponent("\(name)-\(UUID().uuidString.prefix(8))\(suffix)")
    }

    /// Scratch directories whose process is gone.
    private static func removeAbandoned(in base: URL) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: base.path)) ?? []
        for name in names where name.hasPrefix(Self.prefix) {
            guard let pid = pid_t(name.dropFirst(Self.prefix.count)), kill(pid, 0) != 0, errno == ESRCH else { continue }
            try? FileManager.default.removeItem(at: base.appendingPathComponent(name))
        }
    }
}
