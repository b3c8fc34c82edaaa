/// One HTTP/1.1 connection's requests, from head to answer, up to the upgrade: what the client may
/// send when, whether the connection is read, when it is kept alive. The handler
/// (``HTTPServerHandler``) feeds it the client's parts and its own progress and does what it says.
struct HTTP1ConnectionState {
    enum State: Hashable {
        case awaitingHead
        case readingRequest
        /// Admission and the backend connect run: the client is not read.
        case connectingBackend
        /// A file is being looked up or sent: the next request waits (no pipelining).
        case servingFile
        case upgraded
        case closing
    }

    /// What a request's end asks for.
    struct Request {
        var decision: HandshakeDecision
        var keepAlive: Bool
        var isHead: Bool
    }

    enum AfterResponse: Equatable {
        /// Wait for the next request; `read`: a read was held meanwhile and goes now.
        case awaitNext(read: Bool)
        case close
    }

    private(set) var state = State.awaitingHead
    private var request: Request?
    /// Whether the request being answered keeps the connection, and the key of the one being upgraded.
    private(set) var keepAlive = false
    private var webSocketKey: String?
    /// A read asked for while the client must not be read.
    private var readPending = false
    /// A request pipelined behind a file was not answered: the connection closes after the file.
    private var pipelinedRequestDropped = false

    /// A request head: `decide` makes the request of one that is awaited, acted on at the request's
    /// end (its body is read and dropped); other heads are not decided.
    mutating func head(_ decide: () -> Request) {
        switch self.state {
        case .awaitingHead:
            self.request = decide()
            self.state = .readingRequest
        case .servingFile:
            // Pipelined behind a file still being sent: not answered, and the connection closes after
            // the file, which tells the client to send it again.
            self.pipelinedRequestDropped = true
        case .readingRequest, .connectingBackend, .upgraded, .closing:
            break
        }
    }

    /// The request's end: the request to answer, if one was being read.
    mutating func end() -> Request? {
        guard self.state == .readingRequest, let request = self.request else { return nil }
        self.request = nil
        self.keepAlive = request.keepAlive
        return request
    }

    /// The request is a WebSocket handshake whose backend is being opened.
    mutating func connectingBackend(key: String) {
        self.state = .connectingBackend
        self.webSocketKey = key
    }

    /// The 101 goes now: the key it answers, or nil when no handshake is waiting (the client left).
    mutating func upgrade() -> String? {
        guard self.state == .connectingBackend, let key = self.webSocketKey else { return nil }
        self.state = .upgraded
        return key
    }

    mutating func servingFile() {
        self.state = .servingFile
    }

    /// A response ended: the next request, or the end of the connection.
    mutating func responseEnded(keepAlive: Bool) -> AfterResponse {
        guard keepAlive, !self.pipelinedRequestDropped, self.state != .closing else {
            self.state = .closing
            return .close
        }
        self.state = .awaitingHead
        let read = self.readPending
        self.readPending = false
        return .awaitNext(read: read)
    }

    /// The connection is being closed (timeout, failure, an abandoned file).
    mutating func close() {
        self.state = .closing
    }

    /// Whether a read asked for now goes to the socket (otherwise it is held for the next request).
    mutating func read() -> Bool {
        switch self.state {
        case .connectingBackend, .servingFile, .closing:
            self.readPending = true
            return false
        case .awaitingHead, .readingRequest, .upgraded:
            return true
        }
    }

    /// A malformed request can still be answered 400 before any answer began.
    var answersMalformedRequests: Bool {
        self.state == .awaitingHead || self.state == .readingRequest
    }
}
