#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// What tells a changed file from an unchanged one without reading it: device, inode, size and
/// modification time of the file a path leads to. `stat(2)`, not `lstat`: Kubernetes mounts
/// ConfigMaps and Secrets as `name -> ..data/name` and updates them by swapping the `..data` link,
/// so the link itself never changes while the file behind it does (FileManager's attributes
/// describe the link).
struct FileStamp: Equatable, Sendable {
    var device: UInt64
    var inode: UInt64
    var size: Int64
    var modifiedSeconds: Int
    var modifiedNanoseconds: Int

    /// Whether the path leads (through links) to a regular file.
    static func isRegularFile(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG
    }

    /// nil when the file cannot be reached (missing, or a dangling link mid-swap).
    init?(_ path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        self.device = UInt64(info.st_dev)
        self.inode = UInt64(info.st_ino)
        self.size = Int64(info.st_size)
        #if canImport(Darwin)
        (self.modifiedSeconds, self.modifiedNanoseconds) = (info.st_mtimespec.tv_sec, info.st_mtimespec.tv_nsec)
        #else
        (self.modifiedSeconds, self.modifiedNanoseconds) = (info.st_mtim.tv_sec, info.st_mtim.tv_nsec)
        #endif
    }
}
