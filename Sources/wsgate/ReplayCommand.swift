import ArgumentParser
import Foundation
import WSGate

/// `wsgate replay FILE`: a session recording, printed message by message, or its raw bytes
/// (`--raw`) paced as they happened, so a terminal session plays back in a terminal.
struct Replay: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print or play back a session recording (a route's `record:` files).")

    enum Side: String, ExpressibleByArgument, CaseIterable {
        case both, client, backend
    }

    @Argument(help: "The recording (.wsrec.jsonl).")
    var file: String

    @Flag(help: "Wait between messages as long as the session did.")
    var pace = false

    @Option(help: "Playback speed with --pace (2 = twice as fast).")
    var speed: Double = 1

    @Flag(help: "Write the payload bytes alone (default: the backend's side), nothing else.")
    var raw = false

    @Option(help: "Whose messages: both, client (what the client sent) or backend (what it received).")
    var direction: Side?

    @Option(help: "Longest message shown in full; longer ones are cut (0: no limit). Ignored with --raw.")
    var width = 200

    func validate() throws {
        guard self.speed > 0 else { throw ValidationError("--speed must be positive") }
    }

    func run() async throws {
        guard let stream = fopen(self.file, "r") else {
            printError("wsgate: cannot open \(self.file): \(String(cString: strerror(errno)))")
            throw ExitCode(1)
        }
        defer { fclose(stream) }
        let side = self.direction ?? (self.raw ? .backend : .both)
        var clock = 0.0
        // A message's first bytes (enough to show) and its size, per direction, until its last piece.
        var message: [RecordingEntry.Direction: (started: Double, isText: Bool, bytes: [UInt8], size: Int)] = [:]
        let keep = self.width == 0 ? Int.max : self.width * 4
        var line: UnsafeMutablePointer<CChar>?
        var capacity = 0
        var number = 0
        defer { free(line) }
        while getline(&line, &capacity, stream) > 0, let line {
            number += 1
            let text = String(cString: line).trimmingCharacters(in: .newlines)
            guard !text.isEmpty else { continue }
            let entry: RecordingEntry
            do {
                entry = try RecordingEntry.parse(Substring(text), number: number)
            } catch {
                printError("wsgate: \(self.file): \(error)")
                throw ExitCode(1)
            }
            if self.pace, let at = entry.seconds, at > clock {
                try await Task.sleep(nanoseconds: UInt64((at - clock) / self.speed * 1e9))
                clock = at
            }
            switch entry {
            case .header(let header):
                if !self.raw { print("recording of \(header.route) → \(header.backend), client \(header.client) over \(header.clientProtocol), started \(header.started)") }
            case .piece(let seconds, let direction, let isText, let payload, let ends):
                guard side == .both || (side == .client) == (direction == .clientToBackend) else { continue }
                if self.raw {
                    FileHandle.standardOutput.write(Data(payload))
                    continue
                }
                var current = message[direction] ?? (seconds, isText, [], 0)
                current.bytes += payload.prefix(max(0, keep - current.bytes.count))
                current.size += payload.count
                if ends {
                    print(Self.describe(at: current.started, direction, isText: current.isText, current.bytes, size: current.size, width: self.width))
                    message[direction] = nil
                } else {
                    message[direction] = current
                }
            case .truncated(let seconds):
                if !self.raw { print(String(format: "%9.3f  … recording truncated here (max_file_bytes)", seconds)) }
            case .end(let seconds, let code, let closedBy, let lost):
                if !self.raw {
                    print(String(format: "%9.3f  end: close code %d by %@", seconds, code, closedBy) + (lost > 0 ? ", \(lost) bytes not recorded (disk too slow)" : ""))
                }
            }
        }
    }

    static func describe(at seconds: Double, _ direction: RecordingEntry.Direction, isText: Bool, _ bytes: [UInt8], size: Int, width: Int) -> String {
        let arrow = direction == .clientToBackend ? "→" : "←"
        let prefix = String(format: "%9.3f  %@ ", seconds, arrow)
        if isText {
            var text = String(decoding: bytes, as: UTF8.self)
            if width > 0 && text.count > width { text = String(text.prefix(width)) + "…" }
            let shown = text.unicodeScalars.map { $0 == "\n" ? "⏎" : ($0.value < 0x20 ? "·" : String($0)) }.joined()
            return prefix + "text    " + shown
        }
        let hex = bytes.prefix(16).map { String(format: "%02x", $0) }.joined(separator: " ")
        return prefix + "binary  \(size) bytes" + (hex.isEmpty ? "" : "  " + hex + (size > 16 ? " …" : ""))
    }
}

extension RecordingEntry {
    var seconds: Double? {
        switch self {
        case .header: return nil
        case .piece(let seconds, _, _, _, _), .truncated(let seconds): return seconds
        case .end(let seconds, _, _, _): return seconds
        }
    }
}
