import Yams

/// How a TCP/unix route cuts the service's byte stream into WebSocket messages, and marks the end
/// of each client message for the service (`framing:`).
public enum TCPFraming: Sendable, Equatable, CustomStringConvertible {
    /// Each read from the service is a message; client payload goes through as is.
    case raw
    /// Each `\n`-terminated line from the service is a message; each client message is written
    /// followed by the line ending unless it already ends with `\n`.
    case lines(LineFraming)
    /// Each length-prefixed record from the service is a message; each client message is written
    /// after its length.
    case lengthPrefixed(LengthPrefix)

    public var description: String {
        switch self {
        case .raw: return "raw"
        case .lines(let lines):
            return "lines(line_ending=\(lines.lineEnding.rawValue) max_line_bytes=\(lines.maxLineBytes) overflow=\(lines.overflow.rawValue)\(lines.keepLineEnding ? " keep_line_ending" : ""))"
        case .lengthPrefixed(let prefix):
            return "length_prefixed(\(prefix.kind.rawValue)\(prefix.maxMessageBytes.map { " max_message_bytes=\($0)" } ?? ""))"
        }
    }
}

public struct LineFraming: Sendable, Equatable {
    public enum LineEnding: String, Sendable {
        case lf
        case crlf

        var bytes: [UInt8] { self == .lf ? [0x0A] : [0x0D, 0x0A] }
    }

    /// What a line longer than `maxLineBytes` gets.
    public enum Overflow: String, Sendable {
        /// The session closes with 1009.
        case close
        /// The first `maxLineBytes` go as a message of their own, and the line goes on.
        case split
    }

    /// Appended to client messages that do not end with `\n`.
    public var lineEnding = LineEnding.lf
    /// The longest line held while waiting for its `\n` (the only thing framing buffers).
    public var maxLineBytes = 64 * 1024
    public var overflow = Overflow.close
    /// Lines reach the client with their `\n` (and `\r`); by default both are removed.
    public var keepLineEnding = false

    public init() {}
}

public struct LengthPrefix: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        case u8, u16be, u16le, u32be, u32le

        var width: Int {
            switch self {
            case .u8: return 1
            case .u16be, .u16le: return 2
            case .u32be, .u32le: return 4
            }
        }

        var isBigEndian: Bool { self == .u16be || self == .u32be }

        /// The largest length the prefix can carry.
        var maximum: Int { self == .u8 ? 0xFF : self.width == 2 ? 0xFFFF : Int(UInt32.max) }
    }

    public var kind: Kind
    /// Records (either way) longer than this close the session with 1009; nil: the route's
    /// `max_message_bytes` (and never more than the prefix can say).
    public var maxMessageBytes: Int?

    public init(kind: Kind) {
        self.kind = kind
    }
}

/// What a `message_type: text` route does with service bytes that are not UTF-8.
public enum InvalidUTF8Policy: String, Sendable, Equatable {
    /// Sent as a binary message instead (the default, and what `raw` always did).
    case binary
    /// The session closes with 1007.
    case close
}

// MARK: YAML keys

extension ConfigurationValue where Value == TCPFraming {
    /// `raw`, `lines`, `{lines: {line_ending, max_line_bytes, overflow, keep_line_ending}}`, or
    /// `{length_prefixed: KIND}` / `{length_prefixed: {prefix: KIND, max_message_bytes}}`.
    static var framing: Self {
        let kinds = LengthPrefix.Kind.allCases.map(\.rawValue).joined(separator: ", ")
        return Self(read: { reader, node, key throws(ConfigurationError) in
            guard case .mapping = node else {
                switch try reader.string(node, key) {
                case "raw": return .raw
                case "lines": return .lines(LineFraming())
                case let other: throw reader.fail(node, key, "expected raw, lines, {lines: {…}} or {length_prefixed: \(kinds)}, got '\(other)'")
                }
            }
            let entries = try reader.mapping(node, key, allowed: ["lines", "length_prefixed"])
            guard entries.count == 1, let (name, value) = entries.first else { throw reader.fail(node, key, "give one of lines or length_prefixed") }
            if name == "lines" { return .lines(try reader.read(LineFraming.self, value, "\(key).lines")) }
            return .lengthPrefixed(try reader.read(LengthPrefix.self, value, "\(key).length_prefixed"))
        }, show: \.description)
    }
}

extension LineFraming: ConfigurationSection {
    static var keys: [ConfigurationKey<Self>] {
        [
            .value("line_ending", \.lineEnding, .choice("lf or crlf")),
            .value("max_line_bytes", \.maxLineBytes, .size()),
            .value("overflow", \.overflow, .choice("close or split")),
            .value("keep_line_ending", \.keepLineEnding, .bool),
        ]
    }

    static var blank: Self { Self() }
}

extension LengthPrefix: ConfigurationSection {
    static var keys: [ConfigurationKey<Self>] {
        [
            .value("prefix", \.kind, .choice("one of \(Kind.allCases.map(\.rawValue).joined(separator: ", "))"))
                .required("missing (\(Kind.allCases.map(\.rawValue).joined(separator: ", ")))"),
            .optional("max_message_bytes", \.maxMessageBytes, .size(), unset: "the route's"),
        ]
    }

    static var blank: Self { Self(kind: .u8) }
    static var shorthand: String? { "prefix" }
}
