import Foundation

/// Names and retention of the files in a recording directory.
enum RecordingFiles {
    static let suffix = ".wsrec.jsonl"

    /// `20261121T194518.123Z-console-3f9a1c.wsrec.jsonl`: sorts by start time; unique by the random part.
    static func name(route: String, at date: Date) -> String {
        let seconds = date.timeIntervalSince1970
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        let milliseconds = Int((seconds - Double(Int(seconds))) * 1000)
        let stamp = String(format: "%04d%02d%02dT%02d%02d%02d.%03dZ", parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday,
                           parts.tm_hour, parts.tm_min, parts.tm_sec, milliseconds)
        let slug = route.split(separator: "/").joined(separator: "-").filter { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }
        let random = String(UInt32.random(in: 0...0xFF_FFFF), radix: 16)
        return "\(stamp)-\(slug.isEmpty ? "root" : String(slug.prefix(40)))-\(random)\(Self.suffix)"
    }

    /// Deletes the oldest recordings until the directory is under its limits with room for
    /// `keepingRoomFor` more files. Blocking: runs on the thread pool.
    static func rotate(_ settings: RecordSettings, keepingRoomFor newFiles: Int) {
        let manager = FileManager.default
        guard let names = try? manager.contentsOfDirectory(atPath: settings.directory) else { return }
        var files: [(name: String, size: Int)] = names.filter { $0.hasSuffix(Self.suffix) }.sorted().map { name in
            let size = (try? manager.attributesOfItem(atPath: settings.directory + "/" + name)[.size] as? Int) ?? 0
            return (name, size)
        }
        var total = files.reduce(0) { $0 + $1.size }
        while !files.isEmpty && (files.count + newFiles > settings.maxFiles || total + newFiles * settings.maxFileBytes > settings.maxTotalBytes) {
            let oldest = files.removeFirst()
            try? manager.removeItem(atPath: settings.directory + "/" + oldest.name)
            total -= oldest.size
        }
    }
}
