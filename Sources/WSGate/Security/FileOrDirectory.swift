import Foundation

/// A text file, or a directory of them read as one: websockify's token plugins take either, and a
/// directory lets each console's token live in a file of its own. Names starting with a dot are
/// skipped (editors' swap files, Kubernetes' `..data` links), as is anything but a regular file.
enum FileOrDirectory {
    /// The files a path stands for, in name order; just the path for a file.
    static func files(_ path: String) -> [String] {
        guard Self.isDirectory(path) else { return [path] }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        return names.filter { !$0.hasPrefix(".") }.sorted().map { "\(path)/\($0)" }.filter { FileStamp.isRegularFile($0) }
    }

    /// What tells a change: the path's own stamp (a directory's changes when a file is added,
    /// removed or renamed) and each file's (edited in place).
    static func stamps(_ path: String) -> [FileStamp?] {
        guard Self.isDirectory(path) else { return [FileStamp(path)] }
        return [FileStamp(path)] + Self.files(path).map { FileStamp($0) }
    }

    /// The file's text, or every file's text in name order, each ending its last line.
    static func read(_ path: String) throws -> String {
        guard Self.isDirectory(path) else { return try String(contentsOfFile: path, encoding: .utf8) }
        return try Self.files(path).map { file in
            let text = try String(contentsOfFile: file, encoding: .utf8)
            return text.hasSuffix("\n") || text.isEmpty ? text : text + "\n"
        }.joined()
    }

    static func isDirectory(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
    }
}
