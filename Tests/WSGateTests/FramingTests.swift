import NIOCore
import Testing
@testable import WSGate

@Suite struct LineSplitterTests {
    static func lines(_ chunks: [String], _ settings: LineFraming = LineFraming()) throws -> [String] {
        var splitter = LineSplitter(settings)
        var out: [String] = []
        for chunk in chunks {
            try splitter.receive(ByteBuffer(string: chunk)) { line in
                out.append((line.held.map { String(buffer: $0) } ?? "") + String(buffer: line.rest))
            }
        }
        return out
    }

    @Test func oneByteAtATimeAndManyLinesInOneRead() throws {
        let text = "hello\r\nworld\n\nlast"
        #expect(try Self.lines(text.map { String($0) }) == ["hello", "world", ""], "the unfinished 'last' is held")
        let hundred = (0..<100).map { "line \($0)\n" }.joined()
        #expect(try Self.lines([hundred]) == (0..<100).map { "line \($0)" })
        // \r at the end of one read, \n at the start of the next.
        #expect(try Self.lines(["abc\r", "\nd\n"]) == ["abc", "d"])
        var keep = LineFraming()
        keep.keepLineEnding = true
        #expect(try Self.lines(["a\r\nb", "\n"], keep) == ["a\r\n", "b\n"])
    }

    @Test func longLinesFailOrSplitAndNothingMoreIsHeld() throws {
        var settings = LineFraming()
        settings.maxLineBytes = 8
        #expect(try Self.lines(["12345678\n"], settings) == ["12345678"], "exactly the limit is fine")
        #expect(throws: LineSplitter.Failure.lineTooLong(limit: 8)) { try Self.lines(["1234", "56789"], settings) }
        #expect(throws: LineSplitter.Failure.lineTooLong(limit: 8)) { try Self.lines(["123456789\n"], settings) }
        settings.overflow = .split
        #expect(try Self.lines(["1234", "5678901234567", "89\nok\n"], settings) == ["12345678", "90123456", "789", "ok"])
        var splitter = LineSplitter(settings)
        for _ in 0..<100 { try splitter.receive(ByteBuffer(string: "xxxxxxx")) { _ in } }
        #expect(splitter.heldBytes <= 8)
    }
}

@Suite struct RecordSplitterTests {
    static func records(_ bytes: [UInt8], kind: LengthPrefix.Kind, chunk: Int, limit: Int = 1 << 20) throws -> [[UInt8]] {
        var splitter = RecordSplitter(kind, limit: limit)
        var out: [[UInt8]] = []
        var index = 0
        while index < bytes.count {
            let end = min(index + chunk, bytes.count)
            try splitter.receive(ByteBuffer(bytes: bytes[index..<end])) { event in
                switch event {
                case .start: out.append([])
                case .bytes(let piece): out[out.count - 1] += piece.readableBytesView
                }
            }
            index = end
        }
        return out
    }

    @Test func everyPrefixKindSplitOrCoalesced() throws {
        let payloads: [[UInt8]] = [Array("first".utf8), [], Array(repeating: 7, count: 300), [1]]
        for kind in LengthPrefix.Kind.allCases {
            let usable = kind == .u8 ? payloads.filter { $0.count <= 255 } : payloads
            var stream = ByteBuffer()
            for payload in usable {
                RecordSplitter.encode(payload.count, as: kind, into: &stream)
                stream.writeBytes(payload)
            }
            let bytes = Array(stream.readableBytesView)
            for chunk in [1, 2, 3, 7, bytes.count] {
                #expect(try Self.records(bytes, kind: kind, chunk: chunk) == usable, "\(kind) in \(chunk)-byte reads")
            }
        }
        var big = ByteBuffer()
        RecordSplitter.encode(0x0102, as: .u16le, into: &big)
        #expect(Array(big.readableBytesView) == [0x02, 0x01])
    }

    @Test func recordsOverTheLimitFailAtTheirPrefix() {
        #expect(throws: RecordSplitter.Failure.recordTooLong(length: 0x10000, limit: 1000)) {
            try Self.records([0, 1, 0, 0], kind: .u32be, chunk: 4, limit: 1000)
        }
    }
}

@Suite struct ClientMessageFramerTests {
    /// Frames (opcode, fin, payload) through the framer; returns what the service gets.
    static func written(_ framing: TCPFraming, _ frames: [(WebSocketOpcode, Bool, String)], limit: Int = 1 << 20) throws -> String {
        var framer = ClientMessageFramer(framing, maxMessageBytes: limit)
        var out: [UInt8] = []
        for (opcode, fin, payload) in frames {
            try framer.frame(opcode: opcode, fin: fin, length: payload.utf8.count) { out += $0.readableBytesView }
            // Payload in two pieces, as reads deliver it.
            let bytes = Array(payload.utf8)
            for piece in [bytes.prefix(bytes.count / 2), bytes.dropFirst(bytes.count / 2)] where !piece.isEmpty {
                try framer.payload(ByteBuffer(bytes: piece)) { out += $0.readableBytesView }
            }
        }
        return out.map { $0 < 32 || $0 > 126 ? "<\($0)>" : String(UnicodeScalar($0)) }.joined()
    }

    @Test func linesGetTheirEndingUnlessTheyHaveOne() throws {
        #expect(try Self.written(.lines(LineFraming()), [(.text, true, "look"), (.text, true, "north\n"), (.binary, true, "")]) == "look<10>north<10><10>")
        var crlf = LineFraming()
        crlf.lineEnding = .crlf
        #expect(try Self.written(.lines(crlf), [(.text, false, "frag"), (.continuation, true, "mented")]) == "fragmented<13><10>")
        #expect(try Self.written(.raw, [(.text, true, "as is")]) == "as is")
    }

    @Test func lengthPrefixesStreamOrHoldFragmentedMessagesUpToTheLimit() throws {
        #expect(try Self.written(.lengthPrefixed(LengthPrefix(kind: .u16be)), [(.binary, true, "abc")]) == "<0><3>abc")
        #expect(try Self.written(.lengthPrefixed(LengthPrefix(kind: .u32le)), [(.binary, false, "ab"), (.continuation, false, "c"), (.continuation, true, "de")])
                == "<5><0><0><0>abcde")
        #expect(try Self.written(.lengthPrefixed(LengthPrefix(kind: .u8)), [(.binary, true, "")]) == "<0>")
        #expect(throws: ClientMessageFramer.Failure.messageTooLong(limit: 255)) {
            try Self.written(.lengthPrefixed(LengthPrefix(kind: .u8)), [(.binary, true, String(repeating: "x", count: 256))])
        }
        #expect(throws: ClientMessageFramer.Failure.messageTooLong(limit: 4)) {
            try Self.written(.lengthPrefixed(LengthPrefix(kind: .u32be)), [(.binary, false, "abc"), (.continuation, true, "de")], limit: 4)
        }
    }
}

@Suite struct FramingConfigurationTests {
    static func route(_ yaml: String) throws -> RouteConfiguration {
        try ConfigurationLoader.parse(yaml: "listeners: [{address: \":8080\"}]\nroutes:\n  - \(yaml)\n").routes[0]
    }

    @Test func shortAndLongForms() throws {
        #expect(try Self.route("{path: /, backend: \"tcp://h:1\", framing: lines}").framing == .lines(LineFraming()))
        var lines = LineFraming()
        lines.lineEnding = .crlf
        lines.maxLineBytes = 4096
        lines.overflow = .split
        lines.keepLineEnding = true
        #expect(try Self.route("{path: /, backend: \"tcp://h:1\", framing: {lines: {line_ending: crlf, max_line_bytes: 4KiB, overflow: split, keep_line_ending: true}}}").framing == .lines(lines))
        #expect(try Self.route("{path: /, backend: \"unix:/s\", framing: {length_prefixed: u32be}}").framing == .lengthPrefixed(LengthPrefix(kind: .u32be)))
        var prefix = LengthPrefix(kind: .u16le)
        prefix.maxMessageBytes = 1000
        #expect(try Self.route("{path: /, backend: \"tcp://h:1\", framing: {length_prefixed: {prefix: u16le, max_message_bytes: 1000}}}").framing == .lengthPrefixed(prefix))
        #expect(try Self.route("{path: /, backend: \"tcp://h:1\", message_type: text, invalid_utf8: close}").invalidUTF8 == .close)
        for (yaml, message) in [
            ("{path: /, backend: \"ws://h/\", framing: lines}", "only applies to tcp://"),
            ("{path: /, backend: \"tcp://h:1\", framing: words}", "expected raw, lines"),
            ("{path: /, backend: \"tcp://h:1\", framing: {length_prefixed: u24}}", "expected one of u8, u16be"),
            ("{path: /, backend: \"tcp://h:1\", framing: {lines: {line_ending: cr}}}", "expected lf or crlf"),
            ("{path: /, backend: \"tcp://h:1\", invalid_utf8: close}", "only applies with message_type: text"),
        ] {
            do {
                _ = try Self.route(yaml)
                Issue.record("accepted: \(yaml)")
            } catch {
                #expect("\(error)".contains(message), "\(yaml): \(error)")
            }
        }
    }
}
