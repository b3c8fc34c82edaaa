import NIOCore

/// Cuts the service's stream into lines. Each byte is looked at once: only new bytes are searched
/// for `\n`, since the held start of an unfinished line has none. The held part is a copy (the read
/// buffer is not kept alive for it) and never grows past `maxLineBytes`.
struct LineSplitter {
    /// One line as at most two pieces: its held start (from earlier reads) and the rest (a slice of
    /// the current read). The `\n` (and a `\r` before it) removed unless `keepLineEnding`.
    struct Line {
        var held: ByteBuffer?
        var rest: ByteBuffer

        var length: Int { (self.held?.readableBytes ?? 0) + self.rest.readableBytes }
    }

    enum Failure: Error, Equatable {
        case lineTooLong(limit: Int)
    }

    let settings: LineFraming
    private var held: ByteBuffer?

    init(_ settings: LineFraming) {
        self.settings = settings
    }

    /// Bytes of an unfinished line waiting for the rest.
    var heldBytes: Int { self.held?.readableBytes ?? 0 }

    /// Emits every line `input` completes, in order, and keeps the unfinished tail. A line whose
    /// content passes `maxLineBytes` fails, or (`overflow: split`) goes out in pieces of that size.
    mutating func receive(_ input: ByteBuffer, emit: (Line) -> Void) throws(Failure) {
        let limit = self.settings.maxLineBytes
        var input = input
        while input.readableBytes > 0 {
            let view = input.readableBytesView
            let newline = view.firstIndex(of: 0x0A)
            let content = (newline ?? view.endIndex) - view.startIndex
            if self.heldBytes + content > limit {
                guard self.settings.overflow == .split else { throw .lineTooLong(limit: limit) }
                guard let part = input.readSlice(length: limit - self.heldBytes) else { return }  // never: fewer than `content` bytes
                emit(Line(held: self.takeHeld(), rest: part))
                continue
            }
            guard let newline else {
                if self.held == nil { self.held = ByteBufferAllocator().buffer(capacity: min(max(input.readableBytes, 256), limit)) }
                self.held?.writeBuffer(&input)
                return
            }
            guard var rest = input.readSlice(length: newline - view.startIndex + 1) else { return }  // never: the newline is in `input`
            var held = self.takeHeld()
            if !self.settings.keepLineEnding {
                rest.moveWriterIndex(to: rest.writerIndex - 1)
                if rest.readableBytes > 0 {
                    if rest.getInteger(at: rest.writerIndex - 1, as: UInt8.self) == 0x0D { rest.moveWriterIndex(to: rest.writerIndex - 1) }
                } else if var start = held, start.getInteger(at: start.writerIndex - 1, as: UInt8.self) == 0x0D {
                    start.moveWriterIndex(to: start.writerIndex - 1)
                    held = start.readableBytes > 0 ? start : nil
                }
            }
            emit(Line(held: held, rest: rest))
        }
    }

    private mutating func takeHeld() -> ByteBuffer? {
        defer { self.held = nil }
        return self.held.flatMap { $0.readableBytes > 0 ? $0 : nil }
    }
}
