import Logging
import NIOCore
import NIOHTTP1

/// An HTTP/2 connection (h2c with prior knowledge, or h2 after ALPN), driven through
/// ``NGHTTP2ServerSession``. Plain requests get the same answers as on HTTP/1.1; RFC 8441 extended
/// CONNECTs become WebSocket sessions, one per stream, each relayed to its own backend.
///
/// Output is produced in one `mem_send` pass per read batch (and whenever a stream has new bytes),
/// and not at all while the connection's socket is not writable.
final class HTTP2ConnectionHandler: ChannelInboundHandler, GoingAway {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let session: NGHTTP2ServerSession
    private let gateway: GatewayContext
    private var context: ChannelHandlerContext?
    private var streams: [Int32: HTTP2Stream] = [:]
    private var touched: [HTTP2Stream] = []
    /// WebSocket requests of the current read, admitted once all of its frames are handled: a
    /// client that opens and resets a stream in one write (rapid reset) gets no backend connect.
    private var upgradesToStart: [(request: UpgradeRequest, stream: HTTP2Stream)] = []
    /// Backend connects under way for this connection, streams reset since included: no more than
    /// SETTINGS_MAX_CONCURRENT_STREAMS (a client resetting each stream after its request arrived
    /// would otherwise start one per stream, each holding a descriptor until its timeout).
    private var pendingConnects = 0
    /// Plain responses sent whole in the current send pass. A client that has not ended its side of
    /// such a stream gets RST_STREAM(NO_ERROR) (RFC 9113 §8.1): a half-open stream would otherwise
    /// keep the connection from ever idling out.
    private var endedResponses: [Int32] = []
    private var becameWritable: [HTTP2Stream] = []
    private var flushing = false
    private(set) var clientDescription = "?"
    /// Armed while no stream is open: an idle connection is closed after the handshake timeout,
    /// as an idle HTTP/1.1 keep-alive connection is.
    private var idleTimer: Scheduled<Void>?
    /// GOAWAY sent: close once the last stream is done.
    private var draining = false
    /// The channel closed (or the handler left it): events still in the batch being handled open nothing.
    private var isGone = false

    private let client: ClientConnection
    /// The channel's loop, known from the start: streams and file senders that outlive the
    /// handler's time in the pipeline still need it to fail their futures.
    let eventLoop: EventLoop

    init(gateway: GatewayContext, client: ClientConnection, eventLoop: EventLoop) throws {
        self.gateway = gateway
        self.client = client
        self.eventLoop = eventLoop
        self.session = try NGHTTP2ServerSession(settings: gateway.settings.http2)
    }

    var allocator: ByteBufferAllocator { self.context?.channel.allocator ?? ByteBufferAllocator() }
    var isChannelWritable: Bool { self.context?.channel.isWritable ?? false }
    private var logger: Logger { self.gateway.logger }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.clientDescription = self.client.loggable
        self.session.readData = { [weak self] id, limit in
            guard let self, let stream = self.streams[id] else { return .bytes(0, endStream: true) }
            return stream.dataAvailable(upTo: limit)
        }
        self.session.takeData = { [weak self] id, count, output in
            guard let self, let stream = self.streams[id] else { return count == 0 }
            return stream.takeData(count, into: &output)
        }
        self.flushOutput()  // our SETTINGS
        self.gateway.sessions.add(self, on: context.eventLoop)
        self.armIdleTimer()
    }

    private func armIdleTimer() {
        guard let context, self.streams.isEmpty, !self.isGone else { return }
        self.idleTimer?.cancel()
        let timeout = self.gateway.settings.handshakeTimeout
        self.idleTimer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [weak self] in
            guard let self, self.streams.isEmpty else { return }
            self.logger.debug("closing idle HTTP/2 connection", metadata: ["client": "\(self.clientDescription)"])
            self.goAway(reason: "idle")
        }
    }

    /// GOAWAY: no new streams; the connection closes when the open ones are done.
    func goAway(reason: String) {
        guard let context, !self.draining else { return }
        self.draining = true
        do {
            try self.session.goAway()
        } catch {
            self.sessionFailed(error)
            return
        }
        self.flushOutput()
        if self.streams.isEmpty { context.close(promise: nil) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        self.connectionEnded()  // normally done by channelInactive already; a removal without it too
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let events: [NGHTTP2ServerSession.Event]
        do {
            events = try self.session.receive(Self.unwrapInboundIn(data))
        } catch {
            self.logger.info("HTTP/2 connection error: \(error)", metadata: ["client": "\(self.clientDescription)"])
            self.flushOutput()
            context.close(promise: nil)
            return
        }
        for event in events {
            self.handle(event, context: context)
        }
        self.startUpgrades(context: context)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        let touched = self.touched
        self.touched.removeAll(keepingCapacity: true)
        for stream in touched {
            stream.inReadBatch = false
            stream.leg?.readComplete()
        }
        self.flushOutput()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            self.flushOutput()
            for stream in self.streams.values where stream.pendingBytes < HTTP2Stream.highWaterMark {
                stream.notifyWritable()
            }
        }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.connectionEnded()
        context.fireChannelInactive()
    }

    /// The connection is gone: no timer, no registry entry, every stream told once, and no stream
    /// opened after this. Idempotent.
    private func connectionEnded() {
        guard !self.isGone else { return }
        self.isGone = true
        self.idleTimer?.cancel()
        self.gateway.sessions.remove(self)
        let streams = self.streams
        self.streams.removeAll()
        for stream in streams.values { stream.streamClosed() }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        self.logger.debug("HTTP/2 connection error: \(error)", metadata: ["client": "\(self.clientDescription)"])
        context.close(promise: nil)
    }

    // MARK: Events

    private func handle(_ event: NGHTTP2ServerSession.Event, context: ChannelHandlerContext) {
        switch event {
        case .request(let id, let headers, _):
            guard let stream = self.openStream(id) else { return }
            self.handleRequest(stream, headers: headers, context: context)
        case .headersTooLarge(let id, let limit):
            guard let stream = self.openStream(id) else { return }
            self.refuse(stream, HTTPRefusal(.requestHeaderFieldsTooLarge, "request header list larger than \(limit) bytes (server.http2.max_header_list_size)",
                                            closesConnection: false, label: "header_size"))
        case .headersCutOff(_, let limit):
            // nghttp2 has reset the stream (ENHANCE_YOUR_CALM); nothing of it was opened here. Counted
            // as the 431 refusal it stands in for: no status goes to the client.
            self.logger.info("refused request: header list past \(limit * NGHTTP2ServerSession.cutOffFactor) bytes as decoded (server.http2.max_header_list_size \(limit)): stream reset",
                             metadata: ["client": "\(self.clientDescription)", "reset": "ENHANCE_YOUR_CALM", "protocol": "h2"])
            RefusalMetrics.count("header_size", status: 431)
        case .data(let id, let data):
            guard let stream = self.streams[id] else { return }
            if stream.received(data) && !stream.inReadBatch {
                stream.inReadBatch = true
                self.touched.append(stream)
            }
        case .endStream(let id):
            self.streams[id]?.clientEnded()
        case .streamClosed(let id, _):
            self.streams.removeValue(forKey: id)?.streamClosed()
            if self.streams.isEmpty {
                if self.draining {
                    self.flushOutput()
                    context.close(promise: nil)
                } else {
                    self.armIdleTimer()
                }
            }
        }
    }

    private func handleRequest(_ stream: HTTP2Stream, headers: [(name: String, value: String)], context: ChannelHandlerContext) {
        // Counted as an HTTP/1.1 head would hold them: the fields and the host, not the request line.
        let fields = headers.count { !$0.name.hasPrefix(":") || $0.name == ":authority" }
        if let refusal = HTTPRefusal.headerCount(fields, limit: self.gateway.settings.limits.maxHeaderCount) {
            self.refuse(stream, refusal)
            return
        }
        switch HTTP2RequestValidator.decide(headers, routing: self.gateway.routing, secure: self.client.secure) {
        case .probe(let probe):
            let (status, body) = probe.answer(ready: self.gateway.readiness.withLockedValue { $0 })
            self.respond(stream, status: Int(status.code), body: body, isHead: headers.contains { $0.name == ":method" && $0.value == "HEAD" })
        case .refuse(let refusal):
            self.refuse(stream, refusal)
        case .serveFile(let request):
            StaticFileServing.serve(request, front: stream, eventLoop: context.eventLoop, allocator: self.allocator, logger: self.logger)
        case .upgrade(var request):
            request.arrived(over: self.client, trustedProxies: self.gateway.settings.trustedProxies)
            // Its DATA is kept from now on, for the relay to replay.
            if stream.upgradeRequested() { self.upgradesToStart.append((request, stream)) }
        }
    }

    /// A stream for a request that arrived; none once the connection is gone.
    private func openStream(_ id: Int32) -> HTTP2Stream? {
        guard !self.isGone else { return nil }
        let stream = HTTP2Stream(id: id, connection: self)
        self.streams[id] = stream
        self.idleTimer?.cancel()
        return stream
    }

    /// Starts the WebSocket requests of the read just handled whose streams are still open, on the
    /// shared session path, each stream its own front.
    private func startUpgrades(context: ChannelHandlerContext) {
        guard !self.upgradesToStart.isEmpty else { return }
        let upgrades = self.upgradesToStart
        self.upgradesToStart.removeAll(keepingCapacity: true)
        for (request, stream) in upgrades where self.streams[stream.id] === stream && !stream.isClosed {
            WebSocketSessionStart.start(request, front: stream, gateway: self.gateway, eventLoop: context.eventLoop)
        }
    }

    private func refuse(_ stream: HTTP2Stream, _ refusal: HTTPRefusal) {
        refusal.record(client: self.clientDescription, route: nil, protocol: "h2", logger: self.logger)
        self.answer(stream, refusal)
    }

    // MARK: Streams' session path (see HTTP2Stream's SessionFront conformance)

    /// Each WebSocket session over HTTP/2 holds a backend descriptor of its own: it counts against
    /// max_connections / max_connections_per_ip as a connection would, so one HTTP/2 connection
    /// cannot carry a process past its descriptor limit. And backend connects pending on one
    /// connection (streams reset since included) stay under SETTINGS_MAX_CONCURRENT_STREAMS: a
    /// client resetting each stream after its request arrived would otherwise start one per stream.
    func takeSessionSlot() -> Result<ClientSlot?, HTTPRefusal> {
        let limit = Int(self.gateway.settings.http2.maxConcurrentStreams)
        guard self.pendingConnects < limit else {
            return .failure(HTTPRefusal(.serviceUnavailable, "\(limit) backend connects already pending on this connection (server.http2.max_concurrent_streams)",
                                        headers: ["retry-after": "1"], closesConnection: false, label: "pending_connects"))
        }
        return ClientSlot.take(self.gateway.clients, for: self.client.address).map(Optional.some).mapError(\.httpRefusal)
    }

    func connectStarted() { self.pendingConnects += 1 }
    func connectEnded() { self.pendingConnects -= 1 }

    func answer(_ stream: HTTP2Stream, _ refusal: HTTPRefusal) {
        self.respond(stream, status: Int(refusal.status.code), headers: refusal.http2Headers, body: refusal.body)
    }

    /// The 200 that opens a WebSocket stream (RFC 8441 §5); its DATA comes from the relay.
    func acceptWebSocket(_ stream: HTTP2Stream, fields: WebSocketResponseFields) throws {
        try self.session.submitResponse(stream: stream.id, status: 200, headers: fields.headers + [("server", "wsgate")], hasBody: true)
        self.flushOutput()
    }

    func respond(_ stream: HTTP2Stream, status: Int, headers: [(String, String)] = [], contentType: String = "text/plain; charset=utf-8", body: String, isHead: Bool = false) {
        if !isHead { stream.enqueueBody(self.allocator.buffer(string: body)) }
        self.submit(stream, status: status, headers: headers + [("content-type", contentType), ("content-length", String(body.utf8.count))], hasBody: !isHead)
    }

    /// The response head (plus `server`); with `hasBody`, DATA comes from the stream's queue.
    func submit(_ stream: HTTP2Stream, status: Int, headers: [(String, String)], hasBody: Bool) {
        do {
            try self.session.submitResponse(stream: stream.id, status: status, headers: headers + [("server", "wsgate")], hasBody: hasBody)
            if !hasBody { self.responseEnded(stream.id) }
        } catch {
            self.resetStream(stream.id, errorCode: NGHTTP2ServerSession.ErrorCode.internalError)
        }
        self.flushOutput()
    }

    func responseEnded(_ id: Int32) {
        self.endedResponses.append(id)
    }

    // MARK: Session calls for streams

    /// Reopens a stream's receive window for bytes its backend has taken.
    func consume(stream id: Int32, bytes: Int) {
        do { try self.session.consume(stream: id, bytes: bytes) } catch { self.sessionFailed(error) }
    }

    /// A stream has more DATA queued: nghttp2 asks for it in the next send pass.
    func resumeData(stream id: Int32) {
        do { try self.session.resumeData(stream: id) } catch { self.sessionFailed(error) }
    }

    func resetStream(_ id: Int32, errorCode: UInt32) {
        do { try self.session.submitReset(stream: id, errorCode: errorCode) } catch { self.sessionFailed(error) }
    }

    /// A libnghttp2 call failed (out of memory, or a state it refuses): nothing about the connection
    /// can be trusted any more, so it closes, and its streams with it.
    private func sessionFailed(_ error: Error) {
        self.logger.warning("HTTP/2 session error, closing the connection: \(error)", metadata: ["client": "\(self.clientDescription)"])
        self.context?.close(promise: nil)
    }

    // MARK: Output

    /// Sends whatever nghttp2 has ready, in one write. Not re-entered: a stream asking to flush while
    /// frames are being produced is covered by the pass under way.
    func flushOutput() {
        guard let context, !self.flushing, context.channel.isActive else { return }
        guard context.channel.isWritable else { return }
        self.flushing = true
        do {
            try self.session.send()
            while !self.endedResponses.isEmpty {
                // After the pass that queued their last frames: a reset goes out ahead of DATA.
                let ended = self.endedResponses
                self.endedResponses.removeAll(keepingCapacity: true)
                for id in ended where !self.session.clientEnded(stream: id) {
                    try self.session.submitReset(stream: id, errorCode: NGHTTP2ServerSession.ErrorCode.noError)
                }
                try self.session.send()
            }
        } catch {
            self.logger.info("HTTP/2 send error: \(error)", metadata: ["client": "\(self.clientDescription)"])
            self.flushing = false
            context.close(promise: nil)
            return
        }
        self.flushing = false
        let output = self.session.takeOutput()
        if !output.isEmpty {
            for buffer in output {
                context.write(Self.wrapOutboundOut(buffer), promise: nil)
            }
            context.flush()
        }
        let writable = self.becameWritable
        self.becameWritable.removeAll(keepingCapacity: true)
        for stream in writable { stream.notifyWritable() }
        for event in self.session.takeEvents() {
            self.handle(event, context: context)  // streams the send closed: an idle connection arms its timer
        }
        if !self.session.wantsRead && !self.session.wantsWrite {
            context.close(promise: nil)
        }
    }

    /// Each stream reports this once per crossing (see ``HTTP2Stream``), so no duplicate check.
    func streamBecameWritable(_ stream: HTTP2Stream) {
        self.becameWritable.append(stream)
    }
}
