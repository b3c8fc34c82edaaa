import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing
@testable import WSGate

/// Numbered chunks (`chunk(n, &buffer)` writes number n) written like a real service writes: only
/// while the connection is writable, one per `interval` (with no interval, bursts of 64), so a
/// gateway that stops reading holds the service up rather than filling this process's memory.
final class PacedWriter: @unchecked Sendable {
    let interval: TimeAmount
    private let chunk: (Int, inout ByteBuffer) -> Void
    private var next = 1
    private var count = 0
    private var waitingForRoom = false

    init(interval: TimeAmount, chunk: @escaping (Int, inout ByteBuffer) -> Void) {
        self.interval = interval
        self.chunk = chunk
    }

    func start(count: Int, context: ChannelHandlerContext) {
        self.count = count
        self.write(context: context)
    }

    private func write(context: ChannelHandlerContext) {
        guard self.next <= self.count, context.channel.isActive else { return }
        guard context.channel.isWritable else {
            self.waitingForRoom = true
            return
        }
        var buffer = context.channel.allocator.buffer(capacity: 1024)
        for _ in 0..<(self.interval == .zero ? 64 : 1) where self.next <= self.count {
            self.chunk(self.next, &buffer)
            self.next += 1
        }
        context.writeAndFlush(NIOAny(buffer), promise: nil)
        let loopContext = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.eventLoop.scheduleTask(in: self.interval) { self.write(context: loopContext.value) }
    }

    /// From the handler's `channelWritabilityChanged`.
    func writabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, self.waitingForRoom {
            self.waitingForRoom = false
            self.write(context: context)
        }
    }
}

/// A line service for held and shared sessions: `go N` makes it write lines `line 1` … `line N`
/// (paced, see ``PacedWriter``), each padded to `width` bytes; whatever else it reads is kept.
/// With `linesOnConnect`, it starts writing that many as soon as it is connected.
/// Counts the connections it accepted and those that closed.
final class TickerService: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer

    final class Record: Sendable {
        let state = NIOLockedValueBox((accepted: 0, closed: 0, received: ""))
        var accepted: Int { self.state.withLockedValue { $0.accepted } }
        var closed: Int { self.state.withLockedValue { $0.closed } }
        var received: String { self.state.withLockedValue { $0.received } }
    }

    let record: Record
    private let writer: PacedWriter
    private let linesOnConnect: Int
    private var pending = ""

    init(record: Record, interval: TimeAmount = .milliseconds(5), width: Int = 0, linesOnConnect: Int = 0) {
        self.record = record
        self.linesOnConnect = linesOnConnect
        self.writer = PacedWriter(interval: interval) { number, buffer in
            var line = "line \(number)"
            if line.count < width { line += String(repeating: ".", count: width - line.count) }
            buffer.writeString(line + "\n")
        }
    }

    /// A ticker and a gateway in front of it with the routes `routes` makes for the ticker's port.
    static func behindGateway(interval: TimeAmount = .milliseconds(5), width: Int = 0, linesOnConnect: Int = 0,
                              routes: @escaping (_ port: Int) -> [RouteConfiguration]) async throws -> (GatewayFixture, Record) {
        let record = Record()
        let service = try await TestServices.start(group: MultiThreadedEventLoopGroup.singleton) {
            TickerService(record: record, interval: interval, width: width, linesOnConnect: linesOnConnect)
        }
        let fixture = try await GatewayFixture.start(extraBackends: [service]) { _, _ in routes(service.localAddress!.port!) }
        return (fixture, record)
    }

    /// `/console`: text lines from the ticker at `port`, as the resume and share tests use it.
    static func consoleRoute(_ port: Int) -> RouteConfiguration {
        var route = RouteConfiguration(path: "/console", backend: .tcp(host: "127.0.0.1", port: port), messageType: .text)
        route.framing = .lines(LineFraming())
        // `TestClient` answers no pings unless told to, and a hogged run has taken over a minute to
        // connect a hundred of them: the default 30 s check closed the first ones as gone. Tests
        // of liveness set their own.
        route.limits.pingInterval = nil
        return route
    }

    func channelActive(context: ChannelHandlerContext) {
        self.record.state.withLockedValue { $0.accepted += 1 }
        if self.linesOnConnect > 0 { self.writer.start(count: self.linesOnConnect, context: context) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.record.state.withLockedValue { $0.closed += 1 }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.pending += String(buffer: Self.unwrapInboundIn(data))
        while let newline = self.pending.firstIndex(of: "\n") {
            let line = String(self.pending[..<newline])
            self.pending = String(self.pending[self.pending.index(after: newline)...])
            if line.hasPrefix("go "), let count = Int(line.dropFirst(3)) {
                self.writer.start(count: count, context: context)
            } else {
                self.record.state.withLockedValue { $0.received += line + "\n" }
            }
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        self.writer.writabilityChanged(context: context)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event { context.close(promise: nil) }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}

/// Reads text messages until `line N` (or `count` of them, or a close), returning the numbers of the lines read.
func readLines(_ client: TestClient, through last: Int, count: Int = .max, timeout: TimeAmount = .seconds(30),
               answeringPings: Bool = false) async throws -> [Int] {
    try await readLinesAndClose(client, through: last, count: count, timeout: timeout, answeringPings: answeringPings).lines
}

/// The line numbers read (through `last`, or `count` of them), and the close frame if one came
/// first; with `last` nil, everything until the close.
func readLinesAndClose(_ client: TestClient, through last: Int? = nil, count: Int = .max, timeout: TimeAmount = .seconds(30),
                       answeringPings: Bool = false) async throws -> (lines: [Int], close: TestClient.Frame?) {
    var numbers: [Int] = []
    while last == nil || numbers.last != last, numbers.count < count {
        let message = try await client.readMessage(timeout: timeout, answeringPings: answeringPings)
        if message.opcode == 8 { return (numbers, message) }
        let text = String(decoding: message.payload, as: UTF8.self)
        guard let number = Int(text.dropFirst(5).prefix { $0.isNumber }) else { break }
        numbers.append(number)
    }
    return (numbers, nil)
}

/// A record service: on any input it writes `count` length-prefixed (u32be) records of `size`
/// bytes, record n filled with byte n (mod 256), paced (see ``PacedWriter``; 5 MB/s at most: a
/// held session's buffer lasts seconds, not milliseconds).
final class RecordStreamService: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    let count: Int
    private let writer: PacedWriter
    private var started = false

    init(count: Int, size: Int, interval: TimeAmount = .milliseconds(20)) {
        self.count = count
        self.writer = PacedWriter(interval: interval) { number, buffer in
            buffer.writeInteger(UInt32(size))
            buffer.writeRepeatingByte(UInt8(truncatingIfNeeded: number), count: size)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !self.started else { return }
        self.started = true
        self.writer.start(count: self.count, context: context)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        self.writer.writabilityChanged(context: context)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event { context.close(promise: nil) }
    }
}

@Suite(.timeLimit(.minutes(2))) struct ResumeTests {
    static let id = "Zm9vYmFyYmF6cXV4cXV1eHF1dXg"  // 27 base64url characters: 162 bits

    static func route(_ port: Int, window: TimeAmount = .seconds(30), buffer: Int = 1024 * 1024) -> RouteConfiguration {
        var route = TickerService.consoleRoute(port)
        var resume = ResumeSettings()
        resume.window = window
        resume.buffer = buffer
        route.resume = resume
        return route
    }

    @Test func aClientCutOffMidStreamResumesAndGetsEveryLineInOrder() async throws {
        let (fixture, record) = try await TickerService.behindGateway(interval: .milliseconds(2)) { port in [Self.route(port)] }
        defer { Task { await fixture.stop() } }

        let (first, _) = try await fixture.client("/console?resume=\(Self.id)")
        try await first.sendFrame(1, Array("go 100".utf8))
        let before = try await readLines(first, through: 20)
        #expect(before == Array(1...20))
        // Cut: the connection ends without a close frame while the service goes on writing.
        await first.close()

        try await Task.sleep(nanoseconds: 50_000_000)
        let (second, _) = try await fixture.client("/console?resume=\(Self.id)&last=\(before.count)")
        let after = try await readLines(second, through: 100)
        #expect(before + after == Array(1...100))
        #expect(record.accepted == 1)

        // A close frame ends the session: the service's connection goes at once.
        try await second.sendClose(1000)
        try await eventually("the service's connection to close") { record.closed == 1 }
    }

    @Test func withoutLastItGoesOnFromWhatTheGatewayLastWrote() async throws {
        // Lines for 20 s: the service is still talking whenever the client comes back.
        let (fixture, record) = try await TickerService.behindGateway(interval: .milliseconds(20)) { port in [Self.route(port)] }
        defer { Task { await fixture.stop() } }

        let (first, _) = try await fixture.client("/console", headers: ["Sec-WebSocket-Protocol: resume.\(Self.id)"])
        try await first.sendFrame(1, Array("go 1000".utf8))
        let before = try await readLines(first, through: 5)
        await first.close()
        let (second, _) = try await fixture.client("/console", headers: ["Sec-WebSocket-Protocol: resume.\(Self.id)"])
        let firstAfter = try await readLines(second, through: -1, count: 1)
        let after = try await readLines(second, through: (firstAfter.first ?? 0) + 5)
        // Nothing is repeated or reordered; lines in flight when the connection dropped may be lost.
        let resumedAt = try #require(firstAfter.first, "a line after the resume")
        #expect(resumedAt > before.last ?? 0, "before \(before), then \(firstAfter + after)")
        #expect(firstAfter + after == Array(resumedAt...resumedAt + 5))
        #expect(record.accepted == 1)
    }

    /// Record `number` as the service wrote it: its length, and its byte at the start, the middle and
    /// the end (a record joined up from two would differ somewhere; checking every byte in a debug
    /// build holds up the threads all tests share).
    static func isWholeRecord(_ payload: [UInt8], _ number: UInt8) -> Bool {
        payload.count == 100_000 && payload[0] == number && payload[50_000] == number && payload[99_999] == number
    }

    /// `/records` (resumable, `buffer`) in front of an endless ``RecordStreamService`` of 100 KB records.
    static func recordFixture(buffer: Int = 1 << 20) async throws -> GatewayFixture {
        let service = try await TestServices.start(group: MultiThreadedEventLoopGroup.singleton) { RecordStreamService(count: 100_000, size: 100_000) }
        return try await GatewayFixture.start(extraBackends: [service]) { _, _ in
            var route = RouteConfiguration(path: "/records", backend: .tcp(host: "127.0.0.1", port: service.localAddress!.port!))
            route.framing = .lengthPrefixed(LengthPrefix(kind: .u32be))
            var resume = ResumeSettings()
            resume.buffer = buffer
            route.resume = resume
            return [route]
        }
    }

    /// Five whole records, one after another, from the first that began after the old connection's
    /// share (bytes are the record number modulo 256).
    static func expectFiveWholeRecordsAfterTheFirst(_ client: TestClient) async throws {
        var seen: [UInt8] = []
        while seen.count < 5 {
            let message = try await client.readMessage(timeout: .seconds(60))
            guard message.opcode == 2, let number = message.payload.first else {
                Issue.record("opcode \(message.opcode), \(message.payload.count) bytes: \(String(decoding: message.payload.prefix(80), as: UTF8.self)) after \(seen)")
                break
            }
            #expect(Self.isWholeRecord(message.payload, number), "record \(number) whole")
            seen.append(number)
        }
        #expect(seen.count == 5 && seen.first != 1 && zip(seen, seen.dropFirst()).allSatisfy { $1 == $0 &+ 1 }, "\(seen)")
    }

    @Test func aClientThatDroppedInsideARecordResumesAtTheNextWholeOne() async throws {
        // Room for what the service sends while the client is away (the gateway reads it freely then).
        let fixture = try await Self.recordFixture(buffer: 64 << 20)
        defer { Task { await fixture.stop() } }

        let (first, _) = try await fixture.client("/records?resume=\(Self.id)", receiveBuffer: 64 << 10)
        try await first.sendFrame(2, [1])
        let one = try await first.readMessage(timeout: .seconds(60))
        #expect(Self.isWholeRecord(one.payload, 1))
        // Gone while later records stream to it (each is relayed in pieces as it arrives).
        await first.close()
        let (second, _) = try await fixture.client("/records?resume=\(Self.id)")
        try await Self.expectFiveWholeRecordsAfterTheFirst(second)
    }

    /// A phone that changed networks: its old connection still looks alive (and stopped reading)
    /// when it resumes on a new one, which takes over — here inside a record, so the new one starts
    /// at the next whole record, and the service, held up by the old connection, goes on.
    @Test func aResumeWhileTheOldConnectionLooksAliveTakesOver() async throws {
        let fixture = try await Self.recordFixture()
        defer { Task { await fixture.stop() } }

        let (old, _) = try await fixture.client("/records?resume=\(Self.id)", receiveBuffer: 16 << 10)
        try await old.sendFrame(2, [1])
        #expect(Self.isWholeRecord(try await old.readMessage(timeout: .seconds(60)).payload, 1))
        try await old.channel.setOption(.autoRead, value: false).get()
        try await Task.sleep(nanoseconds: 2_000_000_000)  // past the socket buffers: the service is held up by the old connection
        let (new, _) = try await fixture.client("/records?resume=\(Self.id)")
        try await Self.expectFiveWholeRecordsAfterTheFirst(new)
        // The old connection was told, behind what it had not read.
        try await old.channel.setOption(.autoRead, value: true).get()
        var code: UInt16?
        do {
            while code == nil {
                let message = try await old.readMessage(timeout: .seconds(30))
                if message.opcode == 8 { code = message.closeCode }
            }
        } catch {}
        #expect(code == nil || code == 1001)
    }

    @Test func aCloseWithGoingAwayIsAReloadAndHoldsTheSession() async throws {
        let (fixture, record) = try await TickerService.behindGateway(interval: .milliseconds(5)) { port in [Self.route(port)] }
        defer { Task { await fixture.stop() } }

        let (first, _) = try await fixture.client("/console?resume=\(Self.id)")
        try await first.sendFrame(1, Array("go 40".utf8))
        let before = try await readLines(first, through: 10)
        // What a browser sends when its page is reloaded.
        try await first.sendClose(1001)
        let (second, _) = try await fixture.client("/console?resume=\(Self.id)&last=\(before.count)")
        #expect(before + (try await readLines(second, through: 40)) == Array(1...40))
        #expect(record.accepted == 1)
    }

    /// A client that goes silent (no pong) is closed by the liveness check as one whose network
    /// dropped would be: its session is held, and it resumes.
    @Test func aClientThatStopsAnsweringPingsIsHeldNotEnded() async throws {
        // The service writes from its connect, not on a word from the client: with both cores busy
        // this process has stalled past two ping intervals between the 101 and its first send, and
        // the client was gone before it had asked for anything.
        let (fixture, record) = try await TickerService.behindGateway(interval: .milliseconds(20), linesOnConnect: 100_000) { port in
            var route = Self.route(port)
            route.limits.pingInterval = .seconds(1)
            return [route]
        }
        defer { Task { await fixture.stop() } }

        let (silent, _) = try await fixture.client("/console?resume=\(Self.id)")
        // It reads (pings are skipped, never answered) until the gateway gives up on it.
        let (before, close) = try await readLinesAndClose(silent)
        #expect(close?.closeCode == 1001, "\(String(describing: close))")
        let (back, _) = try await fixture.client("/console?resume=\(Self.id)&last=\(before.count)")
        // What it missed is held already (the service wrote on): it arrives before a ping is due.
        // It answers pings too, as a browser would.
        let (after, backClose) = try await readLinesAndClose(back, count: 5, answeringPings: true)
        #expect(before + after == Array(1...before.count + 5),
                "\(before.count) lines before the close (the last \(before.suffix(3))), then \(after.prefix(8)) (\(after.count)), close \(String(describing: backClose?.closeCode)) \(String(decoding: backClose?.payload.dropFirst(2) ?? [], as: UTF8.self))")
        #expect(record.accepted == 1)
    }

    /// The numbers a run of `h2_resume.py` printed.
    static func h2Lines(_ output: String) throws -> [Int] {
        let line = try #require(output.split(separator: "\n").first { $0.hasPrefix("LINES: ") }, "\(output)")
        return try JSONDecoder().decode([Int].self, from: Data(line.dropFirst("LINES: ".count).utf8))
    }

    @Test func aSessionOpenedOverHTTP2ResumesOverHTTP11AndBackOverHTTP2() async throws {
        let (fixture, record) = try await TickerService.behindGateway(interval: .milliseconds(5)) { port in [Self.route(port)] }
        defer { Task { await fixture.stop() } }

        let first = try await Peers.run(try Peers.python, [Peers.script("h2_resume.py"), "127.0.0.1", String(fixture.port), "/console?resume=\(Self.id)", "go 90", "10"])
        // Through line 10 at least: what came in the same read is counted too.
        let overHTTP2 = try Self.h2Lines(first.output)
        #expect(overHTTP2.count >= 10 && overHTTP2 == Array(1...overHTTP2.count), "\(first.output)")
        let (client, _) = try await fixture.client("/console?resume=\(Self.id)&last=\(overHTTP2.count)")
        let overHTTP11 = try await readLines(client, through: 40)
        await client.close()
        let last = overHTTP2.count + overHTTP11.count
        let again = try await Peers.run(try Peers.python, [Peers.script("h2_resume.py"), "127.0.0.1", String(fixture.port), "/console?resume=\(Self.id)&last=\(last)", "", "90"])
        #expect(overHTTP2 + overHTTP11 + (try Self.h2Lines(again.output)) == Array(1...90), "\(again.output)")
        #expect(record.accepted == 1)
    }

    @Test func anotherUsersResumeIsRefusedAndTheOwnersWorks() async throws {
        let tokens = try SecurityTests.file("token-of-ann\ntoken-of-bob\n")
        let (fixture, record) = try await TickerService.behindGateway(interval: .milliseconds(20)) { port in
            var route = Self.route(port)
            route.auth = AuthSettings(method: .bearerTokens(file: tokens))
            return [route]
        }
        defer { Task { await fixture.stop() } }

        let (ann, _) = try await fixture.client("/console?resume=\(Self.id)&token=token-of-ann")
        try await ann.sendFrame(1, Array("go 1000".utf8))
        _ = try await readLines(ann, through: 2)
        await ann.close()

        #expect(try await SecurityTests.status(fixture, "/console?resume=\(Self.id)&token=token-of-bob") == 403)
        let (again, _) = try await fixture.client("/console?resume=\(Self.id)&token=token-of-ann")
        let message = try await again.readMessage()
        #expect(String(decoding: message.payload, as: UTF8.self).hasPrefix("line "))
        #expect(record.accepted == 1)
    }

    @Test func afterTheWindowTheServiceIsClosedAndAResumeGets1011() async throws {
        let (fixture, record) = try await TickerService.behindGateway { port in [Self.route(port, window: .seconds(1))] }
        defer { Task { await fixture.stop() } }

        let (first, _) = try await fixture.client("/console?resume=\(Self.id)")
        try await first.sendFrame(1, Array("go 3".utf8))
        _ = try await readLines(first, through: 3)
        await first.close()
        try await eventually("the held session to end", timeout: .seconds(20)) { record.closed == 1 }

        let (late, _) = try await fixture.client("/console?resume=\(Self.id)&last=3")
        let close = try await late.readMessage()
        #expect(close.closeCode == 1011)
        #expect(record.accepted == 1)
    }

    @Test func aServiceThatSaysMoreThanTheBufferWhileTheClientIsAwayEndsTheSession() async throws {
        // 10 KB/s for 4 s: whatever reached the old connection first, far more than 8 KiB comes after.
        let (fixture, record) = try await TickerService.behindGateway(interval: .milliseconds(10), width: 100) { port in [Self.route(port, buffer: 8 * 1024)] }
        defer { Task { await fixture.stop() } }

        let (first, _) = try await fixture.client("/console?resume=\(Self.id)")
        try await first.sendFrame(1, Array("go 400".utf8))
        let before = try await readLines(first, through: 1)
        await first.close()
        // 400 lines of 100 bytes: far beyond the 8 KiB held for it.
        try await eventually("the overflowing session to end", timeout: .seconds(20)) { record.closed == 1 }
        let (late, _) = try await fixture.client("/console?resume=\(Self.id)&last=\(before.count)")
        let close = try await late.readMessage()
        #expect(close.closeCode == 1011)
        #expect(String(decoding: close.payload.dropFirst(2), as: UTF8.self).contains("resume buffer"))
    }

    /// Samples the hubs' buffers until `done`; returns the most any held at once.
    static func largestBuffer(_ fixture: GatewayFixture, samples limit: Int = 3000, until done: @escaping @Sendable () -> Bool) async throws -> Int {
        var largest = 0
        var samples = 0
        while !done(), samples < limit {
            for hub in try await fixture.gateway.hubSnapshots() { largest = max(largest, hub.bufferedBytes) }
            samples += 1
            try await Task.sleep(nanoseconds: 2_000_000)
        }
        return largest
    }

    @Test func aFloodNeverBuffersMoreThanTheLimitWhetherTheClientIsStuckOrGone() async throws {
        let limit = 128 * 1024
        let (fixture, record) = try await TickerService.behindGateway(interval: .zero, width: 1000) { port in [Self.route(port, buffer: limit)] }
        defer { Task { await fixture.stop() } }

        // Attached but not reading: the owner paces the service.
        let (first, _) = try await fixture.client("/console?resume=\(Self.id)", receiveBuffer: 16 << 10)
        try await first.channel.setOption(.autoRead, value: false).get()
        try await first.sendFrame(1, Array("go 20000".utf8))
        let deadline = NIODeadline.now() + .seconds(30)
        while try await fixture.gateway.hubSnapshots().allSatisfy({ $0.bufferedBytes == 0 }), NIODeadline.now() < deadline {
            try await Task.sleep(nanoseconds: 10_000_000)
        }
        let whileStuck = try await Self.largestBuffer(fixture, samples: 300) { false }
        #expect(whileStuck > 0 && whileStuck <= limit + 64 * 1024, "buffered \(whileStuck)")
        // Gone: the service is read on until what it said no longer fits; the session then ends.
        await first.close()
        let whileHeld = try await Self.largestBuffer(fixture) { record.closed == 1 }
        #expect(whileHeld <= limit + 64 * 1024, "buffered \(whileHeld)")
        try await eventually("the overflowing session to end", timeout: .seconds(20)) { record.closed == 1 }
    }

    @Test func aMalformedResumeIdIsRefused() async throws {
        let (fixture, _) = try await TickerService.behindGateway { port in [Self.route(port)] }
        defer { Task { await fixture.stop() } }
        #expect(try await SecurityTests.status(fixture, "/console?resume=short") == 400)
        #expect(try await SecurityTests.status(fixture, "/console?resume=\(Self.id)&last=x") == 400)
    }
}
