import Foundation
import NIOConcurrencyHelpers

/// A file parsed into a value and parsed again when it changes (size or modification time), checked
/// at most once a second so a busy route costs one `stat` a second, not one per handshake.
/// A change that does not parse leaves the previous value in place and is reported once.
final class WatchedFile<Value: Sendable>: @unchecked Sendable {
    let path: String
    private let parse: @Sendable (String) throws -> Value
    private let onReloadError: @Sendable (String, Error) -> Void
    private let state: NIOLockedValueBox<(value: Value, stamp: FileStamp?, checked: Date)>

    /// Parses the file now; a first read that fails is the caller's (configuration) error.
    init(path: String, parse: @escaping @Sendable (String) throws -> Value, onReloadError: @escaping @Sendable (String, Error) -> Void = { _, _ in }) throws {
        self.path = path
        self.parse = parse
        self.onReloadError = onReloadError
        let stamp = FileStamp(path)
        let value = try parse(try String(contentsOfFile: path, encoding: .utf8))
        self.state = NIOLockedValueBox((value, stamp, Date()))
    }

    var value: Value {
        let now = Date()
        let (current, due) = self.state.withLockedValue { state -> (Value, Bool) in
            let due = now.timeIntervalSince(state.checked) >= 1
            if due { state.checked = now }
            return (state.value, due)
        }
        guard due else { return current }
        let stamp = FileStamp(self.path)
        guard stamp != self.state.withLockedValue({ $0.stamp }) else { return current }
        do {
            let value = try self.parse(try String(contentsOfFile: self.path, encoding: .utf8))
            self.state.withLockedValue { $0.value = value; $0.stamp = stamp }
            return value
        } catch {
            self.state.withLockedValue { $0.stamp = stamp }  // reported once per change
            self.onReloadError(self.path, error)
            return current
        }
    }
}
