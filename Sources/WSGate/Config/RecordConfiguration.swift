import Foundation
import Yams

/// Session recording for a route (`record:`): each session's messages, with timestamps and
/// direction, to a file of its own in `directory` (see ``RecordingFormat``). Recordings hold what
/// users typed, passwords included: keep the directory private (files are created mode 0600).
public struct RecordSettings: Sendable, Equatable {
    /// Absolute (a relative one is taken from the configuration file's directory).
    public var directory: String
    /// A session's file stops growing here (a `truncated` line says so); the session goes on.
    public var maxFileBytes = 16 * 1024 * 1024
    /// The directory's recordings together: the oldest are deleted when a session starts beyond it.
    public var maxTotalBytes = 1024 * 1024 * 1024
    /// And their number.
    public var maxFiles = 1000

    public init(directory: String) {
        self.directory = directory
    }
}

// MARK: YAML keys

extension RecordSettings: ConfigurationSection {
    /// `record: DIR` or `record: {directory: DIR, max_file_bytes, max_total_bytes, max_files}`.
    static var keys: [ConfigurationKey<Self>] {
        [
            .custom("directory", read: { record, reader, node, key throws(ConfigurationError) in
                record.directory = URL(fileURLWithPath: reader.relativeToFile(try reader.string(node, key))).standardizedFileURL.path
            }, show: { ["directory=\($0.directory)"] }).required(),
            .value("max_file_bytes", \.maxFileBytes, ConfigurationValue<Int>.size().checked("must be at least 4KiB") { $0 >= 4096 }),
            .value("max_total_bytes", \.maxTotalBytes, .size()),
            .value("max_files", \.maxFiles, .integer(in: 1...1_000_000)),
        ]
    }

    static var blank: Self { Self(directory: "") }
    static var shorthand: String? { "directory" }

    static func finish(_ record: inout Self, _ reader: ConfigurationReader, _ node: Node, _ key: String) throws(ConfigurationError) {
        guard record.maxTotalBytes >= record.maxFileBytes else {
            throw reader.fail(at: "\(key).max_total_bytes", or: node, "must be at least max_file_bytes (\(record.maxFileBytes))")
        }
    }
}
