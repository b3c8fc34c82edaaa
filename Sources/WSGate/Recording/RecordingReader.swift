import Foundation

/// Reads a recording (``RecordingFormat``) back, line by line: `wsgate replay` and the tests.
public enum RecordingEntry: Equatable, Sendable {
    public struct Header: Equatable, Sendable {
        public var route: String
        public var backend: String
        public var client: String
        public var clientProtocol: String
        public var started: String
    }

    public enum Direction: String, Sendable {
        /// `>`: what the client sent.
        case clientToBackend = ">"
        /// `<`: what the backend sent.
        case backendToClient = "<"
    }

    case header(Header)
    /// A piece of a message (`isText`: of a text message; `ends`: its last piece).
    case piece(seconds: Double, direction: Direction, isText: Bool, payload: [UInt8], ends: Bool)
    case truncated(seconds: Double)
    case end(seconds: Double, closeCode: Int, closedBy: String, lostBytes: Int)

    public struct Invalid: Error, CustomStringConvertible {
        public var line: Int
        public var reason: String
        public var description: String { "line \(self.line): \(self.reason)" }
    }

    /// One line of the file (`number` for errors).
    public static func parse(_ line: Substring, number: Int) throws(Invalid) -> RecordingEntry {
        guard let value = try? JSONSerialization.jsonObject(with: Data(line.utf8)) else { throw Invalid(line: number, reason: "not JSON") }
        if let array = value as? [Any] {
            guard array.count == 5, let seconds = (array[0] as? NSNumber)?.doubleValue, let direction = (array[1] as? String).flatMap(Direction.init(rawValue:)),
                  let kind = array[2] as? String, let data = array[3] as? String, let ends = (array[4] as? NSNumber)?.intValue else {
                throw Invalid(line: number, reason: "expected [seconds, \">\"|\"<\", kind, data, end]")
            }
            let payload: [UInt8]
            switch RecordingFormat.Kind(rawValue: kind) {
            case .text: payload = Array(data.utf8)
            case .binary, .textBytes:
                guard let decoded = Data(base64Encoded: data) else { throw Invalid(line: number, reason: "bad base64") }
                payload = Array(decoded)
            case nil: throw Invalid(line: number, reason: "unknown kind '\(kind)'")
            }
            return .piece(seconds: seconds, direction: direction, isText: kind != RecordingFormat.Kind.binary.rawValue, payload: payload, ends: ends == 1)
        }
        guard let object = value as? [String: Any] else { throw Invalid(line: number, reason: "expected an object or an array") }
        if object["format"] as? String == "wsgate-recording" {
            guard (object["version"] as? NSNumber)?.intValue == 1 else { throw Invalid(line: number, reason: "unsupported version \(object["version"] ?? "?")") }
            return .header(Header(route: object["route"] as? String ?? "?", backend: object["backend"] as? String ?? "?", client: object["client"] as? String ?? "?",
                                  clientProtocol: object["protocol"] as? String ?? "?", started: object["started"] as? String ?? "?"))
        }
        if let seconds = (object["truncated"] as? NSNumber)?.doubleValue { return .truncated(seconds: seconds) }
        if let seconds = (object["end"] as? NSNumber)?.doubleValue {
            return .end(seconds: seconds, closeCode: (object["close_code"] as? NSNumber)?.intValue ?? 1006, closedBy: object["closed_by"] as? String ?? "?",
                        lostBytes: (object["lost_bytes"] as? NSNumber)?.intValue ?? 0)
        }
        throw Invalid(line: number, reason: "unknown entry")
    }
}
