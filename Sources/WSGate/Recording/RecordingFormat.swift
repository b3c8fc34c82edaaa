import Foundation
import NIOCore

/// The recording file: JSON Lines, in the spirit of asciinema's asciicast v2.
///
/// Line 1, a header object:
///     {"format":"wsgate-recording","version":1,"route":"/console","backend":"tcp://…",
///      "client":"203.0.113.9:51234","protocol":"http/1.1","started":"2026-11-21T19:45:18.123Z"}
/// Then one array per piece of a message, as it passed through the gateway:
///     [SECONDS, DIRECTION, KIND, DATA, END]
/// - SECONDS since `started` (millisecond precision);
/// - DIRECTION `">"` client → backend, `"<"` backend → client;
/// - KIND `"t"` text (DATA is the UTF-8 string), `"b"` binary (DATA is base64), `"tb"` a piece of a
///   text message that is not valid UTF-8 on its own, split inside a character (base64);
/// - END 1 when the piece ends its message, 0 when more of it follows (a large or fragmented
///   message is recorded as it streams, never held whole).
/// Objects after the header are markers: `{"truncated":SECONDS}` (max_file_bytes reached),
/// and last `{"end":SECONDS,"close_code":1000,"closed_by":"client","lost_bytes":0}` (`lost_bytes`:
/// payload not recorded because the disk could not keep up).
enum RecordingFormat {
    typealias Direction = RecordingEntry.Direction

    enum Kind: String, Sendable {
        case text = "t"
        case binary = "b"
        case textBytes = "tb"
    }

    static func header(route: String, backend: String, client: String, protocol clientProtocol: String, started: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return "{\"format\":\"wsgate-recording\",\"version\":1,\"route\":\(self.quoted(route)),\"backend\":\(self.quoted(backend)),"
            + "\"client\":\(self.quoted(client)),\"protocol\":\(self.quoted(clientProtocol)),\"started\":\(self.quoted(formatter.string(from: started)))}\n"
    }

    /// One piece's line.
    static func event(seconds: Double, _ direction: Direction, text: Bool, payload: ByteBuffer, ends: Bool) -> String {
        let bytes = payload.readableBytesView
        let kind: Kind
        let data: String
        if text, let string = String(validating: bytes, as: UTF8.self) {
            (kind, data) = (.text, self.quoted(string))
        } else {
            (kind, data) = (text ? .textBytes : .binary, "\"" + Data(bytes).base64EncodedString() + "\"")
        }
        return "[\(self.seconds(seconds)),\"\(direction.rawValue)\",\"\(kind.rawValue)\",\(data),\(ends ? 1 : 0)]\n"
    }

    static func truncated(seconds: Double) -> String {
        "{\"truncated\":\(self.seconds(seconds))}\n"
    }

    static func end(seconds: Double, closeCode: UInt16, closedBy: String, lostBytes: Int) -> String {
        "{\"end\":\(self.seconds(seconds)),\"close_code\":\(closeCode),\"closed_by\":\(self.quoted(closedBy)),\"lost_bytes\":\(lostBytes)}\n"
    }

    static func seconds(_ value: Double) -> String {
        String(format: "%.3f", value)
    }

    static func quoted(_ text: String) -> String {
        JSONString.quoted(text)
    }
}
