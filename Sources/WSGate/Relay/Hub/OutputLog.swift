import NIOCore

/// What a held or shared session's service sent, kept for the clients that read it at their own
/// pace: each message as a header entry (numbered from 1) followed by its payload pieces, copied so
/// that no read buffer is pinned. A client is a position in the log (an absolute entry index);
/// the oldest entries go once the log holds more than `capacity` payload bytes, except those a
/// protected position (the owner's) has not reached yet.
///
/// A value type with no I/O: ``SessionHub`` drives it, its tests drive it directly.
struct OutputLog {
    enum Entry: Sendable, Equatable {
        /// A message starts; `length` payload bytes follow in `.payload` entries.
        case message(sequence: UInt64, opcode: WebSocketOpcode, length: Int)
        case payload(ByteBuffer)

        var payloadBytes: Int {
            if case .payload(let bytes) = self { return bytes.readableBytes }
            return 0
        }
    }

    /// Where a resuming client's replay starts, given the last message it received.
    enum ResumePoint: Equatable {
        case at(Int)
        /// Messages it missed are no longer kept.
        case gap(oldestKept: UInt64)
        /// It claims more than was ever sent.
        case ahead(latest: UInt64)
    }

    private struct Stored {
        var entry: Entry
        /// Payload bytes appended before this entry (an absolute offset).
        var offset: Int
    }

    let capacity: Int
    private var entries = CircularBuffer<Stored>()
    /// The absolute index of `entries.first`.
    private(set) var firstIndex = 0
    /// Payload bytes ever appended.
    private(set) var appendedBytes = 0
    /// Payload bytes held now.
    private(set) var keptBytes = 0
    /// The last message's number (0: none yet).
    private(set) var latestSequence: UInt64 = 0

    init(capacity: Int) {
        self.capacity = capacity
    }

    var endIndex: Int { self.firstIndex + self.entries.count }

    mutating func appendMessage(opcode: WebSocketOpcode, length: Int) {
        self.latestSequence += 1
        self.entries.append(Stored(entry: .message(sequence: self.latestSequence, opcode: opcode, length: length), offset: self.appendedBytes))
    }

    /// Copies `payload`: the log must not keep the service's read buffer alive.
    mutating func appendPayload(_ payload: ByteBuffer) {
        guard payload.readableBytes > 0 else { return }
        var copy = ByteBufferAllocator().buffer(capacity: payload.readableBytes)
        copy.writeImmutableBuffer(payload)
        self.entries.append(Stored(entry: .payload(copy), offset: self.appendedBytes))
        self.appendedBytes += payload.readableBytes
        self.keptBytes += payload.readableBytes
    }

    /// Drops the oldest entries while more than `capacity` bytes are kept, never at or past
    /// `protected`. Returns whether the log now fits.
    @discardableResult
    mutating func trim(protecting protected: Int?) -> Bool {
        while self.keptBytes > self.capacity, let first = self.entries.first {
            if let protected, self.firstIndex >= protected { return false }
            self.entries.removeFirst()
            self.firstIndex += 1
            self.keptBytes -= first.entry.payloadBytes
        }
        return true
    }

    /// Lets go of everything (the session ended with no one to read it); positions stay valid.
    mutating func removeAll() {
        self.firstIndex = self.endIndex
        self.entries.removeAll()
        self.keptBytes = 0
    }

    /// Payload bytes from `index` to the end: how far a client at `index` is behind.
    func bytesBehind(_ index: Int) -> Int {
        self.appendedBytes - self.offset(at: index)
    }

    func offset(at index: Int) -> Int {
        guard index < self.endIndex else { return self.appendedBytes }
        guard index >= self.firstIndex else { return self.entries.first?.offset ?? self.appendedBytes }
        return self.entries[self.entries.index(self.entries.startIndex, offsetBy: index - self.firstIndex)].offset
    }

    /// Whether the entry at `index` is still kept (or not yet written).
    func isKept(_ index: Int) -> Bool {
        index >= self.firstIndex
    }

    /// Entries from `index` on, up to about `maxBytes` of payload (always at least one entry when
    /// there is one). Returns them and the index after them.
    func read(from index: Int, maxBytes: Int) -> (entries: [Entry], next: Int) {
        guard index >= self.firstIndex, index < self.endIndex else { return ([], index) }
        var out: [Entry] = []
        var bytes = 0
        var position = index
        var storageIndex = self.entries.index(self.entries.startIndex, offsetBy: index - self.firstIndex)
        while position < self.endIndex {
            let entry = self.entries[storageIndex].entry
            if !out.isEmpty, bytes + entry.payloadBytes > maxBytes { break }
            out.append(entry)
            bytes += entry.payloadBytes
            position += 1
            storageIndex = self.entries.index(after: storageIndex)
        }
        return (out, position)
    }

    /// The index of the first kept message header at or after `index` (a late joiner starts on a
    /// message boundary); `endIndex` when none.
    func messageStart(atOrAfter index: Int) -> Int {
        var position = max(index, self.firstIndex)
        while position < self.endIndex {
            if case .message = self.entry(at: position) { return position }
            position += 1
        }
        return self.endIndex
    }

    /// Where a client that received messages up to `last` resumes: the header of message `last + 1`.
    func resumePoint(after last: UInt64) -> ResumePoint {
        if last > self.latestSequence { return .ahead(latest: self.latestSequence) }
        // It has everything: it goes on with what comes next.
        if last == self.latestSequence { return .at(self.endIndex) }
        // Search back from the end: a resuming client is usually near it.
        var position = self.endIndex - 1
        while position >= self.firstIndex {
            if case .message(let sequence, _, _) = self.entry(at: position) {
                if sequence == last + 1 { return .at(position) }
                if sequence <= last { break }
            }
            position -= 1
        }
        return .gap(oldestKept: self.oldestKeptSequence ?? self.latestSequence + 1)
    }

    /// The header that starts the last `count` kept messages (a viewer's replay).
    func startOfLast(_ count: Int) -> Int {
        guard count > 0 else { return self.endIndex }
        var found = 0
        var position = self.endIndex - 1
        var start = self.endIndex
        while position >= self.firstIndex {
            if case .message = self.entry(at: position) {
                start = position
                found += 1
                if found == count { break }
            }
            position -= 1
        }
        return start
    }

    var oldestKeptSequence: UInt64? {
        var position = self.firstIndex
        while position < self.endIndex {
            if case .message(let sequence, _, _) = self.entry(at: position) { return sequence }
            position += 1
        }
        return nil
    }

    private func entry(at index: Int) -> Entry {
        self.entries[self.entries.index(self.entries.startIndex, offsetBy: index - self.firstIndex)].entry
    }
}
