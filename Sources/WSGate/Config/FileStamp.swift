import Foundation

/// What tells a changed file from an unchanged one without reading it: size, modification time
/// and inode (the inode catches a Kubernetes ConfigMap update, which swaps a symlink to a new file).
struct FileStamp: Equatable, Sendable {
    var size: UInt64
    var modified: Date
    var inode: UInt64

    /// nil when the file cannot be read (missing, or a dangling link mid-swap).
    init?(_ path: String) {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path) else { return nil }
        self.size = (attributes[.size] as? NSNumber)?.uint64Value ?? 0
        self.modified = attributes[.modificationDate] as? Date ?? .distantPast
        self.inode = (attributes[.systemFileNumber] as? NSNumber)?.uint64Value ?? 0
    }
}
