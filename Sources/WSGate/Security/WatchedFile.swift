import Foundation
import NIOConcurrencyHelpers

/// A file (or a directory of files, see ``FileOrDirectory``) parsed into a value and parsed again
/// when it changes (size or modification time), checked at most once a second so a busy route
/// costs one `stat` a second, not one per handshake. A change that does not parse leaves the
/// previous value in place and is reported once.
final class WatchedFile<Value: Sendable>: @unchecked Sendable {
    let path: String
    private let parse: @Sendable (String) throws -> Value
    private let onReloadError: @Sendable (String, Error) -> Void
    /// Seconds between looks at the file (1 s; tests use 0).
    private let checkInterval: TimeInterval
    private let state: NIOLockedValueBox<(value: Value, version: Int, stamp: [FileStamp?], checked: Date)>

    /// Parses the file now; a first read that fails is the caller's (configuration) error.
    init(path: String, parse: @escaping @Sendable (String) throws -> Value, onReloadError: @escaping @Sendable (String, Error) -> Void = { _, _ in },
         checkInterval: TimeInterval = 1) throws {
        self.path = path
        self.checkInterval = checkInterval
        self.parse = parse
        self.onReloadError = onReloadError
        let stamp = FileOrDirectory.stamps(path)
        let value = try parse(try FileOrDirectory.read(path))
        self.state = NIOLockedValueBox((value, 0, stamp, Date()))
    }

    var value: Value { self.versioned.value }

    /// The value and how many times it has been replaced, so a holder of something checked against
    /// an earlier value can tell whether it needs checking again.
    var versioned: (value: Value, version: Int) {
        let now = Date()
        let (current, due) = self.state.withLockedValue { state -> ((Value, Int), Bool) in
            let due = now.timeIntervalSince(state.checked) >= self.checkInterval
            if due { state.checked = now }
            return ((state.value, state.version), due)
        }
        guard due else { return current }
        let stamp = FileOrDirectory.stamps(self.path)
        guard stamp != self.state.withLockedValue({ $0.stamp }) else { return current }
        do {
            let value = try self.parse(try FileOrDirectory.read(self.path))
            return self.state.withLockedValue { state in
                state.value = value
                state.stamp = stamp
                state.version += 1
                return (value, state.version)
            }
        } catch {
            self.state.withLockedValue { $0.stamp = stamp }  // reported once per change
            self.onReloadError(self.path, error)
            return current
        }
    }
}
