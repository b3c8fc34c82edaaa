#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

enum FileHandleStandardError {
    static func write(_ string: String) {
        var text = string
        text.withUTF8 { writeAll(STDERR_FILENO, $0) }
    }
}

/// write(2) until done (or the descriptor refuses): no shared `FILE *`, so nothing to guard.
private func writeAll(_ descriptor: Int32, _ bytes: UnsafeBufferPointer<UInt8>) {
    guard let base = bytes.baseAddress else { return }
    var offset = 0
    while offset < bytes.count {
        let written = write(descriptor, base + offset, bytes.count - offset)
        if written < 0 && errno == EINTR { continue }
        guard written > 0 else { return }
        offset += written
    }
}
