import NIOCore
import NIOHTTP1
import Testing
@testable import WSGate

/// The backend side of the opening handshake with no socket: the request's bytes, and every answer
/// a backend can give — whole, a byte at a time, with frames behind it, too long, malformed, refused.
@Suite struct BackendHandshakeTests: TransitionTableSuite {
    typealias State = BackendHandshake.State

    static let key = "dGhlIHNhbXBsZSBub25jZQ=="
    static let accept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    static let allStates: [State] = [.awaitingResponse, .accepted, .refused]

    static func machine(in state: State) -> BackendHandshake {
        var machine = BackendHandshake(key: key, offeredSubprotocols: ["chat", "superchat"], offeredCompression: true)
        switch state {
        case .awaitingResponse: break
        case .accepted: _ = machine.receive(text(response()))
        case .refused: _ = machine.receive(text("HTTP/1.1 403 Forbidden\r\n\r\n"))
        }
        #expect(machine.state == state, "could not reach \(state)")
        return machine
    }

    static func response(status: String = "101 Switching Protocols", _ extra: [String] = [], accept: String = accept, lineEnd: String = "\r\n") -> String {
        (["HTTP/1.1 " + status, "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Accept: " + accept] + extra)
            .map { $0 + lineEnd }.joined() + lineEnd
    }

    static func text(_ string: String) -> ByteBuffer { ByteBuffer(string: string) }

    /// What an action says, comparable in tables.
    static func describe(_ action: BackendHandshake.Action) -> String {
        switch action {
        case .needMore: return "more"
        case .accept(let outcome): return "accept \(outcome.subprotocol ?? "-") \(outcome.compression == nil ? "plain" : "deflate")"
        case .refuse(let error): return "refuse \(error)"
        }
    }

    @Test func aValid101IsAcceptedOnlyWhileAwaitingIt() {
        self.check({ Self.describe($0.receive(Self.text(Self.response()))) }, [
            .awaitingResponse: ("accept - plain", .accepted), .accepted: ("more", .accepted), .refused: ("more", .refused),
        ])
        // Awaiting, with bytes already in that are not a status line's start: the head is read whole.
        var started = Self.machine(in: .awaitingResponse)
        #expect(Self.describe(started.receive(Self.text(String(repeating: "x", count: 10)))) == "more")
        #expect(Self.describe(started.receive(Self.text(Self.response())))
            == "refuse backend handshake invalid: not an HTTP/1.1 status line: xxxxxxxxxxHTTP/1.1 101 Switching Protocols")
        #expect(started.state == .refused)
    }

    @Test func aConnectionThatEndsBeforeTheAnswerFailsTheHandshake() {
        self.check({ machine -> Bool in
            machine.connectionFailed()
            return true
        }, [
            .awaitingResponse: (true, .refused), .accepted: (true, .accepted), .refused: (true, .refused),
        ])
    }

    @Test func anAnswerSplitAtEveryByteIsReadTheSame() {
        let whole = Array(Self.response(["Sec-WebSocket-Protocol: chat"]).utf8) + [0x81, 0x02, 0x68, 0x69]
        for split in 1..<whole.count {
            var machine = Self.machine(in: .awaitingResponse)
            var first = ByteBuffer(bytes: whole[..<split])
            var second = ByteBuffer(bytes: whole[split...])
            let firstAction = machine.receive(&first)
            let (action, rest) = { () -> (BackendHandshake.Action, ByteBuffer) in
                if case .accept = firstAction {
                    var both = first
                    both.writeBuffer(&second)
                    return (firstAction, both)
                }
                return (machine.receive(&second), second)
            }()
            #expect(Self.describe(action) == "accept chat plain", "split at \(split)")
            #expect(Array(rest.readableBytesView) == [0x81, 0x02, 0x68, 0x69], "frame after the 101 kept, split at \(split)")
        }
    }

    @Test func bareLineFeedsEndLinesToo() {
        var machine = Self.machine(in: .awaitingResponse)
        var bytes = Self.text(Self.response(["Sec-WebSocket-Extensions: permessage-deflate"], lineEnd: "\n"))
        #expect(Self.describe(machine.receive(&bytes)) == "accept - deflate")
        #expect(bytes.readableBytes == 0)
    }

    @Test func answersThatAreNotAValid101AreRefusedWithWhy() {
        let cases: [(String, String)] = [
            ("HTTP/1.1 403 Forbidden\r\nContent-Length: 3\r\n\r\nno!", "refuse backend refused the WebSocket handshake with 403 Forbidden"),
            (Self.response(accept: "wrong"), "refuse backend handshake invalid: wrong Sec-WebSocket-Accept"),
            (Self.response(["Sec-WebSocket-Accept: \(Self.accept)"]), "refuse backend handshake invalid: wrong Sec-WebSocket-Accept"),
            ("HTTP/1.1 101 OK\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: \(Self.accept)\r\n\r\n", "refuse backend handshake invalid: 101 without 'Upgrade: websocket'"),
            ("HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: \(Self.accept)\r\n\r\n", "refuse backend handshake invalid: 101 without 'Connection: upgrade'"),
            (Self.response(["Sec-WebSocket-Protocol: other"]), "refuse backend handshake invalid: subprotocol 'other' was not offered"),
            (Self.response(["Sec-WebSocket-Protocol: chat, superchat"]), "refuse backend handshake invalid: subprotocol 'chat, superchat' was not offered"),
            (Self.response([" folded"]), "refuse backend handshake invalid: folded or empty header line"),
            (Self.response(["NoColon"]), "refuse backend handshake invalid: header line without a colon: NoColon"),
            (Self.response(["Bad Name: x"]), "refuse backend handshake invalid: space in header name 'Bad Name'"),
            ("SSH-2.0-OpenSSH\r\n\r\n", "refuse backend handshake invalid: not an HTTP/1.1 status line: SSH-2.0-OpenSSH"),
            ("HTTP/1.1 1x1 Nope\r\n\r\n", "refuse backend handshake invalid: not an HTTP/1.1 status line: HTTP/1.1 1x1 Nope"),
        ]
        for (answer, expected) in cases {
            var machine = Self.machine(in: .awaitingResponse)
            var bytes = Self.text(answer)
            #expect(Self.describe(machine.receive(&bytes)) == expected, "for \(answer.debugDescription)")
            #expect(machine.state == .refused)
        }
    }

    @Test func anExtensionNotOfferedIsRefused() {
        var machine = BackendHandshake(key: Self.key, offeredSubprotocols: [], offeredCompression: false)
        var bytes = Self.text(Self.response(["Sec-WebSocket-Extensions: permessage-deflate"]))
        #expect(Self.describe(machine.receive(&bytes)) == "refuse backend handshake invalid: extension accepted that was not offered")
    }

    @Test func aHeadThatNeverEndsIsRefusedOnceOverTheLimit() {
        var machine = Self.machine(in: .awaitingResponse)
        var start = Self.text("HTTP/1.1 101 Switching Protocols\r\n")
        #expect(Self.describe(machine.receive(&start)) == "more")
        let line = "X-Filler: " + String(repeating: "a", count: 1000) + "\r\n"
        var last = "more"
        var sent = start.readerIndex
        while last == "more" && sent < 64 * 1024 {
            var bytes = Self.text(line)
            sent += bytes.readableBytes
            last = Self.describe(machine.receive(&bytes))
        }
        #expect(last == "refuse backend handshake invalid: response head over 16 KiB")
        #expect(sent <= BackendHandshake.maxResponseHeadBytes + line.utf8.count + 64)
        #expect(machine.state == .refused)
    }

    @Test func theRequestIsWrittenAsAnHTTP11Head() throws {
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: "backend:8080")
        headers.add(name: "Sec-WebSocket-Key", value: Self.key)
        let request = try #require(BackendHandshake.request(target: "/chat?room=1", headers: headers, allocator: ByteBufferAllocator()))
        #expect(String(buffer: request) == "GET /chat?room=1 HTTP/1.1\r\nHost: backend:8080\r\nSec-WebSocket-Key: \(Self.key)\r\n\r\n")
    }

    @Test func aRequestFieldThatWouldSplitTheHeadIsNotSent() {
        let allocator = ByteBufferAllocator()
        for (name, value) in [("X-Evil", "a\r\nInjected: 1"), ("X-Evil", "a\nb"), ("X-Evil", "a\u{0}b"), ("X:Evil", "a"), ("", "a")] {
            var headers = HTTPHeaders()
            headers.add(name: name, value: value)
            #expect(BackendHandshake.request(target: "/", headers: headers, allocator: allocator) == nil, "\(name): \(value.debugDescription)")
        }
        #expect(BackendHandshake.request(target: "/a b", headers: [:], allocator: allocator) == nil)
        #expect(BackendHandshake.request(target: "/a\r\n", headers: [:], allocator: allocator) == nil)
    }
}

extension BackendHandshake: StateMachine {}

extension BackendHandshake {
    /// Test convenience: receives a copy of `bytes`.
    mutating func receive(_ bytes: ByteBuffer) -> Action {
        var bytes = bytes
        return self.receive(&bytes)
    }
}
