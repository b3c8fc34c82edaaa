import Foundation
import Logging
import NIOCore
import NIOPosix

/// Writes one session's recording (``RecordingFormat``) without ever making the relay wait: lines
/// collect in a buffer that one file write at a time drains, off the event loop. If the disk falls
/// more than `maxPendingBytes` behind, pieces are dropped (and counted in the end line) rather than
/// held; past `max_file_bytes` nothing more is recorded. Runs on the session's event loop.
final class SessionRecorder {
    static let maxPendingBytes = 1024 * 1024
    /// Room kept for the `truncated` and `end` lines.
    static let reserve = 256

    private enum State {
        case opening
        case open(NIOFileHandle)
        case failed
        case closed
    }

    private let eventLoop: EventLoop
    private let fileIO: NonBlockingFileIO
    private let logger: Logger
    private let maxFileBytes: Int
    private let started = NIODeadline.now()
    private var state = State.opening
    private var pending: ByteBuffer
    private var writing = false
    /// Written and queued, against `maxFileBytes`.
    private var accounted = 0
    private var truncated = false
    private var lostBytes = 0
    private var finishing = false
    let path: String

    private init(path: String, eventLoop: EventLoop, logger: Logger, maxFileBytes: Int, header: String) {
        self.path = path
        self.eventLoop = eventLoop
        self.fileIO = NonBlockingFileIO(threadPool: .singleton)
        self.logger = logger
        self.maxFileBytes = maxFileBytes
        self.pending = ByteBufferAllocator().buffer(string: header)
        self.accounted = header.utf8.count
    }

    /// Starts a recording: rotation of the directory and the file's creation happen on the
    /// thread pool; pieces recorded meanwhile wait in the buffer.
    static func start(_ settings: RecordSettings, route: String, backend: BackendURL, client: String, protocol clientProtocol: String,
                      eventLoop: EventLoop, logger: Logger) -> SessionRecorder {
        let now = Date()
        let path = settings.directory + "/" + RecordingFiles.name(route: route, at: now)
        let header = RecordingFormat.header(route: route, backend: backend.description, client: client, protocol: clientProtocol, started: now)
        let recorder = SessionRecorder(path: path, eventLoop: eventLoop, logger: logger, maxFileBytes: settings.maxFileBytes, header: header)
        let fileIO = recorder.fileIO
        NIOThreadPool.singleton.runIfActive(eventLoop: eventLoop) {
            RecordingFiles.rotate(settings, keepingRoomFor: 1)
        }.flatMap { _ in
            fileIO.openFile(_deprecatedPath: path, mode: .write, flags: .allowFileCreation(posixMode: 0o600), eventLoop: eventLoop)
        }.assumeIsolated().whenComplete { result in
            switch result {
            case .success(let handle):
                if case .closed = recorder.state {
                    try? handle.close()
                    return
                }
                recorder.state = .open(handle)
                recorder.writeNext()
            case .failure(let error):
                recorder.state = .failed
                logger.warning("cannot record the session: \(error)", metadata: ["route": "\(route)", "file": "\(path)"])
            }
        }
        return recorder
    }

    private var seconds: Double { Double((NIODeadline.now() - self.started).nanoseconds) / 1e9 }

    func record(_ direction: RecordingFormat.Direction, text: Bool, payload: ByteBuffer, ends: Bool) {
        guard !self.truncated, !self.finishing else { return }
        if case .failed = self.state { return }
        if self.pending.readableBytes > Self.maxPendingBytes {
            self.lostBytes += payload.readableBytes
            return
        }
        let line = RecordingFormat.event(seconds: self.seconds, direction, text: text, payload: payload, ends: ends)
        guard self.accounted + line.utf8.count <= self.maxFileBytes - Self.reserve else {
            self.truncated = true
            self.append(RecordingFormat.truncated(seconds: self.seconds))
            return
        }
        self.append(line)
    }

    private func append(_ line: String) {
        self.accounted += line.utf8.count
        self.pending.writeString(line)
    }

    /// End of a read batch: what was recorded goes to disk.
    func flush() {
        self.writeNext()
    }

    /// The session ended: the end line is written and the file closed.
    func finish(closeCode: UInt16, closedBy: String) {
        guard !self.finishing else { return }
        if case .failed = self.state { return }
        self.append(RecordingFormat.end(seconds: self.seconds, closeCode: closeCode, closedBy: closedBy, lostBytes: self.lostBytes))
        self.finishing = true
        self.writeNext()
    }

    private func writeNext() {
        guard !self.writing, case .open(let handle) = self.state else { return }
        guard self.pending.readableBytes > 0 else {
            if self.finishing {
                self.state = .closed
                try? handle.close()
            }
            return
        }
        let chunk = self.pending
        self.pending = ByteBufferAllocator().buffer(capacity: 0)
        self.writing = true
        self.fileIO.write(fileHandle: handle, buffer: chunk, eventLoop: self.eventLoop).assumeIsolated().whenComplete { result in
            self.writing = false
            if case .failure(let error) = result {
                self.logger.warning("session recording stopped: \(error)", metadata: ["file": "\(self.path)"])
                self.state = .failed
                try? handle.close()
                return
            }
            self.writeNext()
        }
    }
}
