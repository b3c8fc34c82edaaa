import Logging
import NIOCore
import NIOHTTP1

/// What the shared static-file path needs from a front (an HTTP/1.1 connection, an HTTP/2 stream):
/// writing a response in its protocol. The lookup, the answers, the chunked send, its log line
/// and its failures are ``StaticFileServing``'s, the same for both.
protocol StaticFileFront: AnyObject {
    var protocolName: String { get }
    var clientDescription: String { get }
    /// Whether the client is still there to be answered.
    var clientIsWaiting: Bool { get }
    /// A whole response with a short body (`isHead`: the headers only).
    func respond(_ status: HTTPResponseStatus, headers: [(String, String)], contentType: String, body: String, isHead: Bool)
    /// The response head; with `bodyFollows`, chunks come through ``writeBody(_:)`` and end with
    /// ``endBody()``, otherwise the response is complete.
    func sendHead(_ status: HTTPResponseStatus, headers: [(String, String)], bodyFollows: Bool)
    /// Succeeds once the next chunk may be written; fails once the client is gone (nil: gone already).
    func writeBodyChunk(_ chunk: ByteBuffer) -> EventLoopFuture<Void>?
    func endBody()
    /// The body cannot be completed (the client stalled, the file failed): with the head already
    /// out, the client is cut off (HTTP/1.1 closes the connection, HTTP/2 resets the stream).
    func abandonBody()
}

enum StaticFileServing {
    static func serve(_ request: StaticRequest, front: some StaticFileFront, eventLoop: EventLoop, allocator: ByteBufferAllocator, logger: Logger) {
        let route = request.route.configuration.path
        StaticFileLookup.answer(request, eventLoop: eventLoop, logger: logger).assumeIsolated().whenSuccess { answer in
            guard front.clientIsWaiting else {
                if case .file(let handle, _, _) = answer { try? handle.close() }
                return
            }
            logger.debug("static", metadata: [
                "client": "\(front.clientDescription)", "route": "\(route)", "path": "\(request.lookup.path)", "status": "\(answer.status.code)",
                "protocol": "\(front.protocolName)",
            ])
            switch answer {
            case .page(let status, let contentType, let body):
                front.respond(status, headers: [], contentType: contentType, body: body, isHead: request.isHead)
            case .redirect(let location):
                front.respond(.movedPermanently, headers: [("Location", location)], contentType: "text/plain; charset=utf-8",
                              body: "Moved Permanently: \(location)\n", isHead: request.isHead)
            case .notModified(let headers):
                front.sendHead(.notModified, headers: headers, bodyFollows: false)
            case .file(let handle, let byteCount, let headers):
                let bodyFollows = !request.isHead && byteCount > 0
                front.sendHead(.ok, headers: headers + [("Content-Length", String(byteCount))], bodyFollows: bodyFollows)
                guard bodyFollows else {
                    try? handle.close()
                    return
                }
                StaticFileStreamer.send(handle, byteCount: byteCount, allocator: allocator, eventLoop: eventLoop,
                                        write: { front.writeBodyChunk($0) ?? eventLoop.makeFailedFuture(ChannelError.ioOnClosedChannel) }, abandon: { front.abandonBody() }).assumeIsolated().whenComplete { result in
                    switch result {
                    case .success:
                        if front.clientIsWaiting { front.endBody() }
                    case .failure(let error):
                        guard front.clientIsWaiting else { return }
                        logger.info("static file not sent whole: \(error)", metadata: ["client": "\(front.clientDescription)", "route": "\(route)", "protocol": "\(front.protocolName)"])
                        front.abandonBody()
                    }
                }
            }
        }
    }
}
