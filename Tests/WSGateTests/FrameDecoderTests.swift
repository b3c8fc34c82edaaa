import NIOCore
import Testing
@testable import WSGate

/// Builds frames the way a client would (masked) or a server would (unmasked).
func makeFrame(_ opcode: UInt8, _ payload: [UInt8], fin: Bool = true, masked: Bool = true, rsv: UInt8 = 0, mask: [UInt8] = [0x12, 0x34, 0x56, 0x78]) -> [UInt8] {
    var bytes: [UInt8] = [(fin ? 0x80 : 0) | (rsv << 4) | opcode]
    let maskBit: UInt8 = masked ? 0x80 : 0
    if payload.count < 126 {
        bytes.append(maskBit | UInt8(payload.count))
    } else if payload.count <= 0xFFFF {
        bytes.append(maskBit | 126)
        bytes += [UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
    } else {
        bytes.append(maskBit | 127)
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8((payload.count >> shift) & 0xFF)) }
    }
    if masked {
        bytes += mask
        bytes += payload.enumerated().map { $0.element ^ mask[$0.offset % 4] }
    } else {
        bytes += payload
    }
    return bytes
}

/// A data message reassembled from decoder events, for assertions.
struct Decoded: Equatable {
    var frames: [(WebSocketOpcode, Bool, Int)] = []
    var payload: [UInt8] = []
    var controls: [FrameDecoder.Event] = []

    static func == (a: Decoded, b: Decoded) -> Bool {
        a.payload == b.payload && a.controls == b.controls && a.frames.map { "\($0)" } == b.frames.map { "\($0)" }
    }
}

func decode(_ bytes: [UInt8], role: FrameDecoder.Role = .server, maxMessageBytes: Int = 1 << 20, chunk: Int = Int.max) throws(WebSocketProtocolError) -> Decoded {
    var decoder = FrameDecoder(role: role, configuration: .init(maxMessageBytes: maxMessageBytes, validatesUTF8: true))
    var result = Decoded()
    var start = 0
    while start < bytes.count {
        let end = min(bytes.count, start + chunk)
        var buffer = ByteBuffer(bytes: bytes[start..<end])
        start = end
        while let event = try decoder.next(from: &buffer) {
            switch event {
            case .dataFrame(let opcode, let fin, let length): result.frames.append((opcode, fin, length))
            case .payload(let payload): result.payload += Array(payload.readableBytesView)
            default: result.controls.append(event)
            }
        }
    }
    return result
}

func expectError(_ code: WebSocketCloseCode, _ bytes: [UInt8], role: FrameDecoder.Role = .server, maxMessageBytes: Int = 1 << 20) {
    do {
        _ = try decode(bytes, role: role, maxMessageBytes: maxMessageBytes)
        Issue.record("expected close code \(code)")
    } catch {
        #expect(error.code == code, "\(error.reason)")
    }
}

@Suite struct FrameDecoderTests {
    @Test(arguments: [0, 1, 125, 126, 65535, 65536, 200_000])
    func unmasksEveryLengthEncoding(length: Int) throws {
        let payload = (0..<length).map { UInt8(truncatingIfNeeded: $0 * 7) }
        let whole = try decode(makeFrame(2, payload))
        #expect(whole.payload == payload)
        #expect(whole.frames.count == 1)
        // Byte by byte gives the same result: nothing depends on read boundaries.
        if length <= 65536 {
            let byByte = try decode(makeFrame(2, payload), chunk: 1)
            #expect(byByte.payload == payload)
        }
    }

    @Test func streamsPayloadWithoutWaitingForTheWholeFrame() throws {
        var decoder = FrameDecoder(role: .server, configuration: .init(maxMessageBytes: 1 << 20, validatesUTF8: true))
        let frame = makeFrame(2, Array(repeating: 0xAB, count: 1000))
        var first = ByteBuffer(bytes: frame[0..<100])
        #expect(try decoder.next(from: &first) == .dataFrame(opcode: .binary, fin: true, length: 1000))
        guard case .payload(let part) = try decoder.next(from: &first) else {
            Issue.record("expected a payload slice")
            return
        }
        #expect(part.readableBytes == 92)
        #expect(part.readableBytesView.allSatisfy { $0 == 0xAB })
    }

    /// With `keepsMasked`, binary payload arrives still masked, and XORing each slice with the
    /// client's key combined with a new one gives exactly what masking the clear payload with the new
    /// key gives: the one-pass remask of a WebSocket-to-WebSocket relay. Validated text stays clear.
    @Test(arguments: [1, 7, 64, 100_000])
    func keptMaskedPayloadRemasksInOnePass(chunk: Int) throws {
        let clientKey: [UInt8] = [0x12, 0x34, 0x56, 0x78]
        let relayKey = WebSocketMask(0x9A, 0xBC, 0xDE, 0xF0)
        let payload = (0..<3000).map { UInt8(truncatingIfNeeded: $0 * 31 + 5) }
        let text = Array("héllo".utf8)
        let bytes = makeFrame(2, payload, fin: false, mask: clientKey) + makeFrame(0, Array(payload.prefix(77)), mask: clientKey)
            + makeFrame(1, text, mask: clientKey)
        var decoder = FrameDecoder(role: .server, configuration: .init(maxMessageBytes: 1 << 20, validatesUTF8: true, keepsMasked: true))
        var remasked: [UInt8] = []
        var clearText: [UInt8] = []
        var start = 0
        while start < bytes.count {
            var buffer = ByteBuffer(bytes: bytes[start..<min(bytes.count, start + chunk)])
            start += chunk
            while let event = try decoder.next(from: &buffer) {
                switch event {
                case .maskedPayload(var slice, let mask, let offset):
                    mask.combined(with: relayKey).apply(to: &slice, offset: offset)
                    remasked += slice.readableBytesView
                case .payload(let slice):
                    clearText += slice.readableBytesView
                default:
                    break
                }
            }
        }
        let frames = [payload, Array(payload.prefix(77))]
        let expected = frames.flatMap { frame in frame.enumerated().map { $0.element ^ relayKey[$0.offset] } }
        #expect(remasked == expected)
        #expect(clearText == text)
    }

    @Test func fragmentedMessageKeepsFrames() throws {
        let bytes = makeFrame(1, Array("Hel".utf8), fin: false) + makeFrame(9, [1, 2]) + makeFrame(0, Array("lo".utf8))
        let decoded = try decode(bytes)
        #expect(decoded.payload == Array("Hello".utf8))
        #expect(decoded.frames.map { "\($0.0) \($0.1)" } == ["text false", "continuation true"])
        #expect(decoded.controls == [.ping(ByteBuffer(bytes: [1, 2]))])
    }

    @Test func unmaskedClientFrameIsProtocolError() {
        expectError(.protocolError, makeFrame(1, [0x41], masked: false))
    }

    @Test func maskedServerFrameIsProtocolError() {
        expectError(.protocolError, makeFrame(1, [0x41], masked: true), role: .client)
    }

    @Test(arguments: [UInt8(1), 2, 4, 7])
    func reservedBitsAreProtocolError(rsv: UInt8) {
        expectError(.protocolError, makeFrame(1, [0x41], rsv: rsv))
    }

    @Test(arguments: [UInt8(3), 4, 5, 6, 7, 0xB, 0xC, 0xF])
    func unknownOpcodesAreProtocolError(opcode: UInt8) {
        expectError(.protocolError, makeFrame(opcode, []))
    }

    @Test func longControlFrameIsProtocolError() {
        expectError(.protocolError, makeFrame(9, Array(repeating: 0, count: 126)))
    }

    @Test func fragmentedControlFrameIsProtocolError() {
        expectError(.protocolError, makeFrame(9, [], fin: false))
    }

    @Test func continuationWithoutStartIsProtocolError() {
        expectError(.protocolError, makeFrame(0, [1]))
    }

    @Test func newMessageInsideFragmentedOneIsProtocolError() {
        expectError(.protocolError, makeFrame(1, [0x41], fin: false) + makeFrame(2, [1]))
    }

    @Test func oversizedMessageIs1009AtTheHeader() {
        expectError(.messageTooBig, makeFrame(2, Array(repeating: 0, count: 101)), maxMessageBytes: 100)
        expectError(.messageTooBig, makeFrame(2, Array(repeating: 0, count: 60), fin: false) + makeFrame(0, Array(repeating: 0, count: 41)), maxMessageBytes: 100)
    }

    @Test func invalidUTF8IsDetectedAcrossFragments() {
        // "κόσμε" then a truncated sequence, then an invalid continuation in the next fragment.
        expectError(.invalidPayload, makeFrame(1, [0xCE, 0xBA, 0xE1], fin: false) + makeFrame(0, [0x41]))
        expectError(.invalidPayload, makeFrame(1, [0xED, 0xA0, 0x80]))  // a surrogate
        expectError(.invalidPayload, makeFrame(1, [0xE2, 0x82]))  // message ends mid-character
    }

    @Test func validUTF8SplitAcrossFragmentsPasses() throws {
        let decoded = try decode(makeFrame(1, [0xE2, 0x82], fin: false) + makeFrame(0, [0xAC]))
        #expect(decoded.payload == [0xE2, 0x82, 0xAC])
    }

    @Test func closeFrameRules() throws {
        #expect(try decode(makeFrame(8, [])).controls == [.close(code: nil, reason: "")])
        #expect(try decode(makeFrame(8, [0x03, 0xE8] + Array("bye".utf8))).controls == [.close(code: .normalClosure, reason: "bye")])
        expectError(.protocolError, makeFrame(8, [0x03]))
        for invalid: UInt16 in [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000] {
            expectError(.protocolError, makeFrame(8, [UInt8(invalid >> 8), UInt8(invalid & 0xFF)]))
        }
        expectError(.invalidPayload, makeFrame(8, [0x03, 0xE8, 0xFF]))
    }

    @Test func lengthWithTopBitIsProtocolError() {
        expectError(.protocolError, [0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4])
    }
}

@Suite struct MaskingAndUTF8Tests {
    @Test(arguments: [0, 1, 2, 3, 5], [0, 3, 8, 31, 32, 67, 100])
    func wordMaskingMatchesBytewise(offset: Int, length: Int) {
        let mask = WebSocketMask(0xA1, 0xB2, 0xC3, 0xD4)
        let original = (0..<length).map { UInt8(truncatingIfNeeded: $0 * 13) }
        var buffer = ByteBuffer(bytes: original)
        mask.apply(to: &buffer, offset: offset)
        let expected = original.enumerated().map { $0.element ^ [0xA1, 0xB2, 0xC3, 0xD4][($0.offset + offset) % 4] }
        #expect(Array(buffer.readableBytesView) == expected)
    }

    @Test func utf8Validator() {
        #expect(UTF8Validator.isValid(Array("héllo wörld €𝄞".utf8)))
        #expect(!UTF8Validator.isValid([0xC0, 0x80]))  // overlong
        #expect(!UTF8Validator.isValid([0xF4, 0x90, 0x80, 0x80]))  // above U+10FFFF
        var validator = UTF8Validator()
        let first = validator.consume([0xF0, 0x9D])
        #expect(first)
        #expect(!validator.isComplete)
        let second = validator.consume([0x84, 0x9E])
        #expect(second)
        #expect(validator.isComplete)
    }

    @Test func closeReasonIsCutOnACharacterBoundary() {
        let frame = FrameEncoder.closeFrame(code: .normalClosure, reason: String(repeating: "é", count: 100), mask: nil, allocator: ByteBufferAllocator())
        #expect(frame.readableBytes <= 127)
        let reason = Array(frame.readableBytesView.dropFirst(4))
        #expect(UTF8Validator.isValid(reason))
    }
}

@Suite struct ReceiveBuffersTests {
    @Test func startsSmallGrowsWhenFullAndShrinksAfterTwoSmallReads() {
        var sizer = ReceiveBuffers()
        #expect(sizer.nextBufferSize() == 512)
        let grew = sizer.record(actualReadBytes: 512)  // full: double
        #expect(grew)
        #expect(sizer.nextBufferSize() == 1024)
        for _ in 0..<10 { _ = sizer.record(actualReadBytes: 1 << 20) }
        #expect(sizer.nextBufferSize() == 64 * 1024)  // capped
        let grewPastCap = sizer.record(actualReadBytes: 64 * 1024)
        #expect(!grewPastCap)
        _ = sizer.record(actualReadBytes: 10)  // one small read: no change yet
        #expect(sizer.nextBufferSize() == 64 * 1024)
        _ = sizer.record(actualReadBytes: 10)
        #expect(sizer.nextBufferSize() == 32 * 1024)
        for _ in 0..<40 { _ = sizer.record(actualReadBytes: 0) }
        #expect(sizer.nextBufferSize() == 64)  // floor
        #expect(MemoryLayout<ReceiveBuffers>.size <= 3 * MemoryLayout<Int>.size)  // stored inline by the channel
    }
}
