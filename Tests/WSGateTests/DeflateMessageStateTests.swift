import NIOCore
import Testing
@testable import WSGate

/// Every event in every state of the two permessage-deflate message machines, and what a peer can
/// force through them: a zip bomb, invalid or truncated UTF-8, a message started while another is
/// paused, an empty compressed message.
@Suite struct InflatingMessageTests: TransitionTableSuite {
    typealias State = InflatingMessage.State

    static let allStates: [State] = [.idle, .inflating, .paused(inTail: false), .paused(inTail: true)]

    static func machine(in state: State) -> InflatingMessage {
        var machine = InflatingMessage(maxMessageBytes: 100, checksUTF8: true)
        switch state {
        case .idle: break
        case .inflating: _ = machine.frameStarted(opcode: .binary, fin: false, length: 10)
        case .paused(let inTail):
            _ = machine.frameStarted(opcode: .binary, fin: true, length: 10)
            machine.pause(inTail: inTail)
        }
        #expect(machine.state == state, "could not reach \(state)")
        return machine
    }


    @Test func aDataFrameStartsAMessageInEveryState() {
        // A paused message cannot see a new frame (its reads are held), but the machine stays sound.
        self.check({ $0.frameStarted(opcode: .text, fin: false, length: 5) }, [
            .idle: (false, .inflating), .inflating: (false, .inflating),
            .paused(inTail: false): (false, .inflating), .paused(inTail: true): (false, .inflating),
        ])
        self.check({ $0.frameStarted(opcode: .binary, fin: true, length: 0) }, [
            .idle: (true, .inflating), .inflating: (true, .inflating),
            .paused(inTail: false): (true, .inflating), .paused(inTail: true): (true, .inflating),
        ])
    }

    @Test func pausingAndResumingSayWhatWaits() {
        self.check({ machine -> Bool in machine.pause(inTail: false); return machine.isPaused }, [
            .idle: (true, .paused(inTail: false)), .inflating: (true, .paused(inTail: false)),
            .paused(inTail: false): (true, .paused(inTail: false)), .paused(inTail: true): (true, .paused(inTail: false)),
        ])
        self.check({ $0.resume() }, [
            .idle: (nil, .idle), .inflating: (nil, .inflating),
            .paused(inTail: false): (false, .inflating), .paused(inTail: true): (true, .inflating),
        ])
    }

    @Test func finishingEndsTheMessageInEveryState() {
        self.check({ (try? $0.finish()).map { "\($0)" } }, [
            .idle: ("\(WebSocketOpcode.binary)", .idle), .inflating: ("\(WebSocketOpcode.binary)", .idle),
            .paused(inTail: false): ("\(WebSocketOpcode.binary)", .idle), .paused(inTail: true): ("\(WebSocketOpcode.binary)", .idle),
        ])
    }

    @Test func theFirstRelayedFrameCarriesTheOpcodeAndTheRestAreContinuations() throws {
        var machine = InflatingMessage(maxMessageBytes: 100, checksUTF8: true)
        let endsAtFirstFrame = machine.frameStarted(opcode: .text, fin: false, length: 4)
        #expect(!endsAtFirstFrame)
        machine.payloadArrived(4)
        #expect(!machine.messageComplete)
        #expect(try machine.inflated(ByteBuffer(string: "ab")) == .text)
        #expect(try machine.inflated(ByteBuffer(string: "cd")) == .continuation)
        let endsAtLastHeader = machine.frameStarted(opcode: .continuation, fin: true, length: 3)
        #expect(!endsAtLastHeader)
        #expect(machine.opcode == .text)
        machine.payloadArrived(2)
        #expect(!machine.messageComplete)
        machine.payloadArrived(1)
        #expect(machine.messageComplete)
        #expect(try machine.finish() == .continuation)
        // An empty compressed message: its only frame carries the opcode.
        let emptyMessageEnds = machine.frameStarted(opcode: .binary, fin: true, length: 0)
        #expect(emptyMessageEnds)
        #expect(try machine.finish() == .binary)
    }

    @Test func aZipBombEndsAtTheLimitAndTheCountStartsOverEachMessage() throws {
        var machine = InflatingMessage(maxMessageBytes: 10, checksUTF8: true)
        _ = machine.frameStarted(opcode: .binary, fin: true, length: 1)
        _ = try machine.inflated(ByteBuffer(repeating: 0, count: 10))
        _ = try machine.finish()
        _ = machine.frameStarted(opcode: .binary, fin: true, length: 1)
        _ = try machine.inflated(ByteBuffer(repeating: 0, count: 6))
        #expect(throws: WebSocketProtocolError(.messageTooBig, "decompressed message exceeds 10 bytes")) {
            try machine.inflated(ByteBuffer(repeating: 0, count: 5))
        }
    }

    @Test func inflatedTextMustBeUTF8FromClientsOnly() throws {
        var client = InflatingMessage(maxMessageBytes: 100, checksUTF8: true)
        _ = client.frameStarted(opcode: .text, fin: true, length: 1)
        #expect(throws: WebSocketProtocolError(.invalidPayload, "text message is not valid UTF-8")) {
            try client.inflated(ByteBuffer(bytes: [0xC0, 0x80]))
        }
        // A sequence split across chunks is fine; one cut off by the end of the message is not.
        _ = client.frameStarted(opcode: .text, fin: true, length: 1)
        _ = try client.inflated(ByteBuffer(bytes: [0x61, 0xE2, 0x82]))
        _ = try client.inflated(ByteBuffer(bytes: [0xAC]))
        #expect(try client.finish() == .continuation)
        _ = client.frameStarted(opcode: .text, fin: true, length: 1)
        _ = try client.inflated(ByteBuffer(bytes: [0xE2, 0x82]))
        #expect(throws: WebSocketProtocolError(.invalidPayload, "text message ends inside a UTF-8 sequence")) { try client.finish() }
        // Binary is never checked, nor a backend's text.
        _ = client.frameStarted(opcode: .binary, fin: true, length: 1)
        _ = try client.inflated(ByteBuffer(bytes: [0xFF]))
        var backend = InflatingMessage(maxMessageBytes: 100, checksUTF8: false)
        _ = backend.frameStarted(opcode: .text, fin: true, length: 1)
        _ = try backend.inflated(ByteBuffer(bytes: [0xFF]))
        #expect(try backend.finish() == .continuation)
    }
}

@Suite struct DeflatingMessageTests: TransitionTableSuite {
    typealias State = DeflatingMessage.State

    static let allStates: [State] = [.idle, .passing, .compressing(sentAFrame: false), .compressing(sentAFrame: true)]

    /// `min_size` 100: single-frame messages under it go as they are.
    static func machine(in state: State) -> DeflatingMessage {
        var machine = DeflatingMessage(minimumMessageBytes: 100)
        switch state {
        case .idle: break
        case .passing: _ = machine.frameStarted(opcode: .text, fin: true, length: 10)
        case .compressing(let sent):
            _ = machine.frameStarted(opcode: .text, fin: false, length: 10)
            if sent { _ = machine.nextFrame() }
        }
        #expect(machine.state == state, "could not reach \(state)")
        return machine
    }


    @Test func aNewMessageIsCompressedUnlessItIsOneSmallFrame() {
        let compressing = State.compressing(sentAFrame: false)
        self.check({ $0.frameStarted(opcode: .binary, fin: true, length: 99) }, [
            .idle: (.passThrough, .passing), .passing: (.passThrough, .passing), compressing: (.passThrough, .passing), .compressing(sentAFrame: true): (.passThrough, .passing),
        ])
        self.check({ $0.frameStarted(opcode: .binary, fin: true, length: 100) }, [
            .idle: (.compress, compressing), .passing: (.compress, compressing), compressing: (.compress, compressing), .compressing(sentAFrame: true): (.compress, compressing),
        ])
        // Fragmented: the size is unknown, so it is compressed, however small its first frame.
        self.check({ $0.frameStarted(opcode: .binary, fin: false, length: 1) }, [
            .idle: (.compress, compressing), .passing: (.compress, compressing), compressing: (.compress, compressing), .compressing(sentAFrame: true): (.compress, compressing),
        ])
    }

    @Test func continuationsFollowTheirMessage() {
        self.check({ $0.frameStarted(opcode: .continuation, fin: false, length: 5) }, [
            .idle: (.passThrough, .idle), .passing: (.passThrough, .passing),
            .compressing(sentAFrame: false): (.compress, .compressing(sentAFrame: false)), .compressing(sentAFrame: true): (.compress, .compressing(sentAFrame: true)),
        ])
        // An empty last frame ends a compressed message at once.
        self.check({ $0.frameStarted(opcode: .continuation, fin: true, length: 0) }, [
            .idle: (.passThrough, .idle), .passing: (.passThrough, .passing),
            .compressing(sentAFrame: false): (.finish, .compressing(sentAFrame: false)), .compressing(sentAFrame: true): (.finish, .compressing(sentAFrame: true)),
        ])
    }

    @Test func onlyTheFirstWrittenFrameCarriesTheOpcodeAndRSV1() {
        self.check({ machine -> String in let frame = machine.nextFrame(); return "\(frame.opcode) \(frame.compressed)" }, [
            .idle: ("\(WebSocketOpcode.continuation) false", .idle), .passing: ("\(WebSocketOpcode.continuation) false", .passing),
            .compressing(sentAFrame: false): ("\(WebSocketOpcode.text) true", .compressing(sentAFrame: true)),
            .compressing(sentAFrame: true): ("\(WebSocketOpcode.continuation) false", .compressing(sentAFrame: true)),
        ])
    }

    @Test func finishingReturnsToIdle() {
        self.check({ machine -> Bool in machine.finished(); return machine.isCompressing }, [
            .idle: (false, .idle), .passing: (false, .idle), .compressing(sentAFrame: false): (false, .idle), .compressing(sentAFrame: true): (false, .idle),
        ])
    }

    @Test func theMessageEndsWithTheLastPayloadOfItsLastFrame() {
        var machine = DeflatingMessage(minimumMessageBytes: 0)
        let first = machine.frameStarted(opcode: .binary, fin: false, length: 10)
        #expect(first == .compress)
        let endedEarly = machine.payloadCompressed(10)
        #expect(!endedEarly)
        let last = machine.frameStarted(opcode: .continuation, fin: true, length: 6)
        #expect(last == .compress)
        let endedMidFrame = machine.payloadCompressed(4)
        #expect(!endedMidFrame)
        let ended = machine.payloadCompressed(2)
        #expect(ended)
    }
}
