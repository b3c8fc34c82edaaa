import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing
@testable import WSGate

@Suite(.timeLimit(.minutes(3))) struct ShareTests {
    static let key = "c2hhcmVkLWNvbnNvbGUtZm9yLWNsYXNz"

    static func route(_ port: Int, _ configure: (inout ShareSettings) -> Void = { _ in }) -> RouteConfiguration {
        var route = TickerService.consoleRoute(port)
        var share = ShareSettings()
        share.maxViewers = 200
        configure(&share)
        route.share = share
        return route
    }

    @Test func aHundredViewersShareOneServiceConnectionAndEachGetsEveryLineInOrder() async throws {
        let (fixture, record) = try await TickerService.behindGateway(interval: .milliseconds(2)) { port in [Self.route(port)] }
        defer { Task { await fixture.stop() } }

        let (owner, _) = try await fixture.client("/console?share=\(Self.key)")
        // At once: one after another took over a minute in a hogged run.
        let viewers = try await withThrowingTaskGroup(of: TestClient.self) { group in
            for _ in 0..<100 {
                group.addTask { try await fixture.client("/console?share=\(Self.key)").0 }
            }
            return try await group.reduce(into: [TestClient]()) { $0.append($1) }
        }
        try await owner.sendFrame(1, Array("go 50".utf8))
        #expect(try await readLines(owner, through: 50) == Array(1...50))
        try await withThrowingTaskGroup(of: [Int].self) { group in
            for viewer in viewers {
                group.addTask { try await readLines(viewer, through: 50) }
            }
            for try await lines in group {
                #expect(lines == Array(1...50))
            }
        }
        #expect(record.accepted == 1)

        // The owner leaving ends the session for everyone, and the service's connection.
        try await owner.sendClose(1000)
        for viewer in viewers {
            let close = try await viewer.readMessage()
            #expect(close.closeCode == 1001)
        }
        try await eventually("the service's connection to close") { record.closed == 1 }
    }

    @Test func readOnlyViewersInputNeverReachesTheServiceAndTheOwnersDoes() async throws {
        let (fixture, record) = try await TickerService.behindGateway { port in [Self.route(port)] }
        defer { Task { await fixture.stop() } }

        let (owner, _) = try await fixture.client("/console?share=\(Self.key)")
        let (viewer, _) = try await fixture.client("/console?share=\(Self.key)")
        try await viewer.sendFrame(1, Array("from the viewer".utf8))
        try await owner.sendFrame(1, Array("from the owner".utf8))
        try await owner.sendFrame(1, Array("go 1".utf8))
        // The line reaches both only after the service read everything sent before "go 1".
        #expect(try await readLines(viewer, through: 1) == [1])
        #expect(record.received == "from the owner\n")
    }

    @Test func withViewersAllEveryMembersMessagesReachTheServiceWhole() async throws {
        let (fixture, record) = try await TickerService.behindGateway { port in
            [Self.route(port) { $0.viewers = .all }]
        }
        defer { Task { await fixture.stop() } }

        let (owner, _) = try await fixture.client("/console?share=\(Self.key)")
        let (viewer, _) = try await fixture.client("/console?share=\(Self.key)")
        // Fragmented messages from both at once: each reaches the service as one line.
        try await owner.sendFrame(1, Array("own".utf8), fin: false)
        try await viewer.sendFrame(1, Array("vie".utf8), fin: false)
        try await viewer.sendFrame(0, Array("wer".utf8))
        try await owner.sendFrame(0, Array("er".utf8))
        try await eventually("both lines to arrive") { record.received.split(separator: "\n").count == 2 }
        #expect(Set(record.received.split(separator: "\n")) == ["owner", "viewer"])
    }

    @Test func aViewerThatStopsReadingIsDroppedWithoutHoldingUpTheOthers() async throws {
        let (fixture, record) = try await TickerService.behindGateway(interval: .zero, width: 4000) { port in
            [Self.route(port) { $0.queue = 256 * 1024 }]
        }
        defer { Task { await fixture.stop() } }

        let (owner, _) = try await fixture.client("/console?share=\(Self.key)")
        let (reader, _) = try await fixture.client("/console?share=\(Self.key)")
        let (stuck, _) = try await fixture.client("/console?share=\(Self.key)", receiveBuffer: 16 << 10)
        try await stuck.channel.setOption(.autoRead, value: false).get()
        // 2,000 lines of 4,000 bytes: more than the socket buffers on the way to the stuck viewer
        // hold, and far more than a member may fall behind (256 KiB).
        try await owner.sendFrame(1, Array("go 2000".utf8))
        let finished = NIOLockedValueBox(false)
        async let largest = ResumeTests.largestBuffer(fixture, samples: 100_000) { finished.withLockedValue { $0 } }
        async let ownerLines = readLines(owner, through: 2000)
        async let readerLines = readLines(reader, through: 2000)
        #expect(try await ownerLines == Array(1...2000))
        #expect(try await readerLines == Array(1...2000))
        finished.withLockedValue { $0 = true }
        let buffered = try await largest
        #expect(buffered > 0 && buffered <= 256 * 1024 + 64 * 1024, "buffered \(buffered)")
        #expect(record.accepted == 1)
        // The stuck viewer was let go: its close (1008) sits behind what it did not read, so it may
        // find the connection closed (after close_timeout) before it sees the close frame.
        try await stuck.channel.setOption(.autoRead, value: true).get()
        var code: UInt16?
        do {
            while code == nil {
                let message = try await stuck.readMessage()
                if message.opcode == 8 { code = message.closeCode }
            }
        } catch {}
        try await stuck.waitForEOF(timeout: .seconds(30))
        #expect(code == nil || code == 1008)
    }

    @Test func aSharedSessionsOwnerDropsIsHeldWhileViewersWatchAndResumesWithItsId() async throws {
        let (fixture, record) = try await TickerService.behindGateway(interval: .milliseconds(5)) { port in
            var route = Self.route(port)
            route.resume = ResumeSettings()
            return [route]
        }
        defer { Task { await fixture.stop() } }

        let ownerID = ResumeTests.id
        let (owner, _) = try await fixture.client("/console?share=\(Self.key)&resume=\(ownerID)")
        // A viewer presenting some other resume id is still a viewer: its input goes nowhere.
        let (viewer, _) = try await fixture.client("/console?share=\(Self.key)&resume=bm90LXRoZS1vd25lcnMtaWQtYXQtYWxs")
        try await viewer.sendFrame(1, Array("from the viewer".utf8))
        try await owner.sendFrame(1, Array("go 60".utf8))
        let before = try await readLines(owner, through: 10)
        await owner.close()
        // The viewer keeps watching while the owner is away.
        #expect(try await readLines(viewer, through: 60) == Array(1...60))
        let (back, _) = try await fixture.client("/console?share=\(Self.key)&resume=\(ownerID)&last=\(before.count)")
        #expect(before + (try await readLines(back, through: 60)) == Array(1...60))
        try await back.sendFrame(1, Array("owner again".utf8))
        try await eventually("the owner's line to arrive") { record.received.contains("owner again") }
        #expect(!record.received.contains("viewer"))
        #expect(record.accepted == 1)
    }

    @Test func aKeyInAHeaderOrTheUserItselfNamesTheSession() async throws {
        let tokens = try SecurityTests.file("token-of-ann\ntoken-of-bob\n")
        let (fixture, record) = try await TickerService.behindGateway { port in
            var byHeader = Self.route(port) { $0.key = .header }
            byHeader.path = "/header"
            var byUser = Self.route(port) { $0.key = .user }
            byUser.path = "/user"
            byUser.auth = AuthSettings(method: .bearerTokens(file: tokens))
            return [byHeader, byUser]
        }
        defer { Task { await fixture.stop() } }

        let (first, _) = try await fixture.client("/header", headers: ["X-WSGate-Share: \(Self.key)"])
        let (second, _) = try await fixture.client("/header", headers: ["X-WSGate-Share: \(Self.key)"])
        try await first.sendFrame(1, Array("go 3".utf8))
        #expect(try await readLines(second, through: 3) == [1, 2, 3])
        #expect(record.accepted == 1)

        // One user's two tabs share a session; another user's is their own.
        let (ann, _) = try await fixture.client("/user?token=token-of-ann")
        let (annAgain, _) = try await fixture.client("/user?token=token-of-ann")
        let (bob, _) = try await fixture.client("/user?token=token-of-bob")
        try await ann.sendFrame(1, Array("go 2".utf8))
        #expect(try await readLines(annAgain, through: 2) == [1, 2])
        try await bob.sendFrame(1, Array("go 1".utf8))
        #expect(try await readLines(bob, through: 1) == [1])
        #expect(record.accepted == 3)
    }

    @Test func theViewerCapIsEnforcedAndALateJoinerGetsTheLastFewLines() async throws {
        let (fixture, _) = try await TickerService.behindGateway { port in
            [Self.route(port) { $0.maxViewers = 1; $0.replayLast = 3 }]
        }
        defer { Task { await fixture.stop() } }

        let (owner, _) = try await fixture.client("/console?share=\(Self.key)")
        try await owner.sendFrame(1, Array("go 10".utf8))
        #expect(try await readLines(owner, through: 10) == Array(1...10))
        let (late, _) = try await fixture.client("/console?share=\(Self.key)")
        #expect(try await readLines(late, through: 10) == [8, 9, 10])
        #expect(try await SecurityTests.status(fixture, "/console?share=\(Self.key)") == 503)
    }
}
