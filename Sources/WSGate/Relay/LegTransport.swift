import NIOCore

/// What carries one WebSocket leg's bytes: a TCP channel (HTTP/1.1 client leg, backend leg) or an
/// HTTP/2 stream. The leg's protocol logic (``WebSocketLeg``) only ever talks to this.
protocol LegTransport: AnyObject {
    var eventLoop: EventLoop { get }
    /// Whether more writes are welcome; the partner leg stops reading while this is false.
    var isWritable: Bool { get }
    func write(_ buffer: ByteBuffer)
    func flush()
    /// Lets bytes in for the first time, once the session is wired up.
    func startReading()
    /// The partner drained: reads that were held back may go on.
    func resumeReading()
    /// Sends what is pending, then closes (HTTP/2: ends the stream).
    func closeAfterFlush()
    /// Closes at once (HTTP/2: resets the stream).
    func close()
}
