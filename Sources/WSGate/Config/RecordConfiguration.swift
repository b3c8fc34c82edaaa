/// Session recording for a route (`record:`): each session's messages, with timestamps and
/// direction, to a file of its own in `directory` (see ``RecordingFormat``). Recordings hold what
/// users typed, passwords included: keep the directory private (files are created mode 0600).
public struct RecordSettings: Sendable, Equatable {
    /// Absolute (the loader resolves a relative one against the configuration file's directory).
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
