import NIOCore
import NIOHTTP1

/// The gateway's client side of the RFC 6455 opening handshake with a WebSocket backend, with no
/// I/O: the request's bytes, then the response read as it arrives until its head is complete and
/// checked. A backend's 101 is a status line and a few headers with no body, so this reads just
/// that, instead of adding an HTTP encoder and decoder to every backend connection and removing them.
struct BackendHandshake {
    /// What came back: what the session agreed with the backend.
    struct Outcome: Equatable {
        var subprotocol: String?
        var compression: BackendDeflate?
    }

    enum State: Hashable {
        /// Reading the response head.
        case awaitingResponse
        case accepted
        case refused
    }

    enum Action {
        case needMore
        /// The 101 is valid; whatever followed it is left in the buffer passed in.
        case accept(Outcome)
        case refuse(BackendError)
    }

    /// Far more than a 101 needs; a backend that sends more is not answering a WebSocket handshake.
    static let maxResponseHeadBytes = 16 * 1024

    private(set) var state = State.awaitingResponse
    /// The head so far, while awaiting the response: none of it holds the end of the head.
    private var head: ByteBuffer?
    private let expectedAccept: String
    private let offeredSubprotocols: [String]
    private let offeredCompression: Bool

    init(key: String, offeredSubprotocols: [String], offeredCompression: Bool) {
        self.expectedAccept = WebSocketAccept.value(forKey: key)
        self.offeredSubprotocols = offeredSubprotocols
        self.offeredCompression = offeredCompression
    }

    /// The request as it goes on the wire, or nil when a field holds a byte that would split it
    /// (CR, LF or NUL: never from a parsed client request, but the request mixes in configuration).
    static func request(target: String, headers: HTTPHeaders, allocator: ByteBufferAllocator) -> ByteBuffer? {
        func isSafe(_ text: String) -> Bool {
            !text.utf8.contains { $0 == UInt8(ascii: "\r") || $0 == UInt8(ascii: "\n") || $0 == 0 }
        }
        guard isSafe(target), !target.utf8.contains(UInt8(ascii: " ")) else { return nil }
        var buffer = allocator.buffer(capacity: 256)
        buffer.writeStaticString("GET ")
        buffer.writeString(target)
        buffer.writeStaticString(" HTTP/1.1\r\n")
        for (name, value) in headers {
            guard isSafe(name), isSafe(value), !name.isEmpty, !name.utf8.contains(UInt8(ascii: ":")) else { return nil }
            buffer.writeString(name)
            buffer.writeStaticString(": ")
            buffer.writeString(value)
            buffer.writeStaticString("\r\n")
        }
        buffer.writeStaticString("\r\n")
        return buffer
    }

    /// Takes the bytes read from the backend. On ``Action/accept(_:)``, `bytes` keeps what followed
    /// the head (the backend's first frames); on anything else it is consumed.
    mutating func receive(_ bytes: inout ByteBuffer) -> Action {
        guard case .awaitingResponse = self.state else {
            bytes.moveReaderIndex(to: bytes.writerIndex)
            return .needMore
        }
        let scanned = self.head?.readableBytes ?? 0  // searched already, with no end of head in it
        var head = self.head.takeAppending(bytes)
        bytes.moveReaderIndex(to: bytes.writerIndex)
        guard let end = Self.endOfHead(in: head.readableBytesView, from: scanned) else {
            if head.readableBytes > Self.maxResponseHeadBytes {
                return self.refuse(.invalidHandshake("response head over \(Self.maxResponseHeadBytes / 1024) KiB"))
            }
            self.head = head
            return .needMore
        }
        guard end <= Self.maxResponseHeadBytes, let text = head.readSlice(length: end) else {
            return self.refuse(.invalidHandshake("response head over \(Self.maxResponseHeadBytes / 1024) KiB"))
        }
        bytes = head
        switch Self.parse(text.readableBytesView) {
        case .failure(let error):
            return self.refuse(error)
        case .success(let (status, headers)):
            switch self.validate(status: status, headers: headers) {
            case .success(let outcome):
                self.state = .accepted
                return .accept(outcome)
            case .failure(let error):
                return self.refuse(error)
            }
        }
    }

    /// The connection closed or broke before a valid answer: nothing read later counts.
    mutating func connectionFailed() {
        if case .awaitingResponse = self.state {
            self.state = .refused
            self.head = nil
        }
    }

    private mutating func refuse(_ error: BackendError) -> Action {
        self.state = .refused
        self.head = nil
        return .refuse(error)
    }

    /// Where the head ends (just past its empty line, CRLF or a bare LF as RFC 9112 §2.2 allows),
    /// searching from `start`.
    static func endOfHead(in bytes: ByteBufferView, from start: Int) -> Int? {
        let base = bytes.startIndex
        var index = base + start
        while index < bytes.endIndex {
            if bytes[index] == UInt8(ascii: "\n") {
                let offset = index - base
                if offset >= 1 && bytes[index - 1] == UInt8(ascii: "\n") { return offset + 1 }
                if offset >= 2 && bytes[index - 1] == UInt8(ascii: "\r") && bytes[index - 2] == UInt8(ascii: "\n") { return offset + 1 }
            }
            index += 1
        }
        return nil
    }

    /// The status line and header fields of a complete head. Split as bytes: a Swift `String`
    /// holds CR LF as one character.
    static func parse(_ bytes: ByteBufferView) -> Result<(HTTPResponseStatus, HTTPHeaders), BackendError> {
        var lines = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map { line in
            String(decoding: line.last == UInt8(ascii: "\r") ? line.dropLast() : line, as: UTF8.self)
        }
        while lines.last?.isEmpty == true { lines.removeLast() }
        guard let statusLine = lines.first else { return .failure(.invalidHandshake("empty response")) }
        // HTTP-version SP 3DIGIT SP [reason-phrase] (RFC 9112 §4); compared as bytes, not characters.
        let parts = statusLine.utf8.split(separator: UInt8(ascii: " "), maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[0].starts(with: "HTTP/1.".utf8), parts[1].count == 3,
              parts[1].allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
            return .failure(.invalidHandshake("not an HTTP/1.1 status line: \(statusLine.prefix(64))"))
        }
        let code = parts[1].reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
        guard code >= 100 else { return .failure(.invalidHandshake("not an HTTP/1.1 status line: \(statusLine.prefix(64))")) }
        var headers = HTTPHeaders()
        for line in lines.dropFirst() {
            guard let first = line.utf8.first, first != UInt8(ascii: " "), first != UInt8(ascii: "\t") else {
                return .failure(.invalidHandshake("folded or empty header line"))
            }
            guard let colon = line.utf8.firstIndex(of: UInt8(ascii: ":")) else {
                return .failure(.invalidHandshake("header line without a colon: \(line.prefix(64))"))
            }
            let name = line[..<colon]
            guard !name.utf8.contains(where: { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }) else {
                return .failure(.invalidHandshake("space in header name '\(name.prefix(64))'"))
            }
            headers.add(name: String(name), value: String(HTTPTokens.trimmed(line[line.utf8.index(after: colon)...])))
        }
        return .success((HTTPResponseStatus(statusCode: code), headers))
    }

    private func validate(status: HTTPResponseStatus, headers: HTTPHeaders) -> Result<Outcome, BackendError> {
        guard status == .switchingProtocols else { return .failure(.handshakeRejected(status: status)) }
        guard HTTPTokens.contains(headers, "upgrade", token: "websocket") else {
            return .failure(.invalidHandshake("101 without 'Upgrade: websocket'"))
        }
        guard HTTPTokens.contains(headers, "connection", token: "upgrade") else {
            return .failure(.invalidHandshake("101 without 'Connection: upgrade'"))
        }
        guard headers["sec-websocket-accept"] == [self.expectedAccept] else {
            return .failure(.invalidHandshake("wrong Sec-WebSocket-Accept"))
        }
        // Only what was offered may come back: permessage-deflate when offered, nothing otherwise.
        let compression: BackendDeflate?
        switch DeflateNegotiation.backendAccepted(headers["sec-websocket-extensions"]) {
        case .success(let agreed) where agreed == nil || self.offeredCompression: compression = agreed
        case .success: return .failure(.invalidHandshake("extension accepted that was not offered"))
        case .failure(let error): return .failure(.invalidHandshake(error.reason))
        }
        let chosen = HTTPTokens.list(headers, "sec-websocket-protocol")
        switch chosen.count {
        case 0:
            return .success(Outcome(subprotocol: nil, compression: compression))
        case 1 where self.offeredSubprotocols.contains(String(chosen[0])):
            return .success(Outcome(subprotocol: String(chosen[0]), compression: compression))
        default:
            return .failure(.invalidHandshake("subprotocol '\(chosen.joined(separator: ", "))' was not offered"))
        }
    }
}
