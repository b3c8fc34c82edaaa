import NIOCore
import Testing
@testable import WSGate

/// ``HubLifecycle`` on a made-up clock: what each event a client drives does to a held or shared
/// session, in every state it can find the session in.
@Suite struct HubLifecycleTests {
    static let start = NIODeadline.uptimeNanoseconds(1_000_000_000_000)
    static func at(_ seconds: Int64) -> NIODeadline { start + .seconds(seconds) }

    static func resumable(user: String? = "ann") -> HubLifecycle {
        HubLifecycle(window: .seconds(30), user: user)
    }

    @Test func anOwnerThatVanishesIsHeldForTheWindowAndOneThatClosesEndsIt() {
        var vanished = Self.resumable()
        #expect(vanished.ownerLeft(cleanly: false, at: Self.at(0), mayHold: true) == .hold(until: Self.at(30)))
        #expect(vanished.state == .held(until: Self.at(30)))
        var closed = Self.resumable()
        #expect(closed.ownerLeft(cleanly: true, at: Self.at(0), mayHold: true) == .end)
        #expect(closed.state == .ended)
    }

    @Test func noRoomAmongHeldSessionsEndsIt() {
        var lifecycle = Self.resumable()
        #expect(lifecycle.ownerLeft(cleanly: false, at: Self.at(0), mayHold: false) == .end)
        #expect(lifecycle.state == .ended)
    }

    @Test func aResumeWithinTheWindowReattachesAndOnlyItsUserMay() {
        var lifecycle = Self.resumable()
        _ = lifecycle.ownerLeft(cleanly: false, at: Self.at(0), mayHold: true)
        #expect(lifecycle.resume(user: "bob") == .refuse(.otherUser))
        #expect(lifecycle.resume(user: nil) == .refuse(.otherUser))
        #expect(lifecycle.isHeld)
        #expect(lifecycle.resume(user: "ann") == .attach(replacing: false))
        #expect(lifecycle.state == .live && lifecycle.ownerAttached)
        // It may vanish again and be held again.
        #expect(lifecycle.ownerLeft(cleanly: false, at: Self.at(40), mayHold: true) == .hold(until: Self.at(70)))
    }

    @Test func aResumeWhileTheOldConnectionLooksAliveReplacesIt() {
        var lifecycle = Self.resumable()
        #expect(lifecycle.resume(user: "ann") == .attach(replacing: true))
        #expect(lifecycle.state == .live)
    }

    @Test func theWindowEndsAHeldSessionOnlyOnceItHasPassed() {
        var lifecycle = Self.resumable()
        _ = lifecycle.ownerLeft(cleanly: false, at: Self.at(0), mayHold: true)
        #expect(lifecycle.windowExpired(at: Self.at(29)) == false)
        #expect(lifecycle.windowExpired(at: Self.at(30)) == true)
        #expect(lifecycle.state == .ended)
        #expect(lifecycle.resume(user: "ann") == .refuse(.ended))
        // A stale timer of a session resumed meanwhile changes nothing.
        var resumed = Self.resumable()
        _ = resumed.ownerLeft(cleanly: false, at: Self.at(0), mayHold: true)
        _ = resumed.resume(user: "ann")
        #expect(resumed.windowExpired(at: Self.at(31)) == false)
        #expect(resumed.state == .live)
    }

    @Test func overflowEndsAHeldSessionButNotAnAttachedOne() {
        var attached = Self.resumable()
        #expect(attached.overflowed() == false)
        #expect(attached.state == .live)
        var held = Self.resumable()
        _ = held.ownerLeft(cleanly: false, at: Self.at(0), mayHold: true)
        #expect(held.overflowed() == true)
        #expect(held.state == .ended)
    }

    @Test func aSessionWithoutResumeIsNeverHeldNorResumed() {
        var shared = HubLifecycle(window: nil, maxViewers: 2, user: nil)
        #expect(shared.resume(user: nil) == .refuse(.ended))
        #expect(shared.ownerLeft(cleanly: false, at: Self.at(0), mayHold: true) == .end)
    }

    @Test func viewersAreCappedAndASharedSessionEndsWithItsOwnerByDefault() {
        var shared = HubLifecycle(window: nil, maxViewers: 2, user: nil)
        #expect(shared.viewerJoins() == nil)
        #expect(shared.viewerJoins() == nil)
        #expect(shared.viewerJoins() == .full)
        #expect(shared.viewerLeft() == false)
        #expect(shared.viewerJoins() == nil)
        #expect(shared.ownerLeft(cleanly: true, at: Self.at(0), mayHold: true) == .end)
        #expect(shared.viewerJoins() == .ended)
    }

    @Test func aSharedSessionThatCanBeResumedIsHeldForItsOwnerWhileViewersCome() {
        var shared = HubLifecycle(window: .seconds(30), maxViewers: 5, user: nil)
        _ = shared.viewerJoins()
        #expect(shared.ownerLeft(cleanly: false, at: Self.at(0), mayHold: true) == .hold(until: Self.at(30)))
        #expect(shared.viewerJoins() == nil)
        #expect(shared.viewerLeft() == false)
        #expect(shared.viewerLeft() == false)
        #expect(shared.isHeld)
        #expect(shared.resume(user: nil) == .attach(replacing: false))
        // A clean leave ends it, viewers or not.
        _ = shared.viewerJoins()
        #expect(shared.ownerLeft(cleanly: true, at: Self.at(40), mayHold: true) == .end)
    }

    @Test func withLastMemberItOutlivesItsOwnerUntilTheLastViewerLeaves() {
        var shared = HubLifecycle(window: nil, outlivesOwner: true, maxViewers: 5, user: nil)
        _ = shared.viewerJoins()
        _ = shared.viewerJoins()
        #expect(shared.ownerLeft(cleanly: true, at: Self.at(0), mayHold: true) == .carryOn)
        #expect(shared.viewerLeft() == false)
        #expect(shared.viewerLeft() == true)
        #expect(shared.state == .ended)
        // With no viewer there when the owner leaves, it ends at once.
        var alone = HubLifecycle(window: nil, outlivesOwner: true, maxViewers: 5, user: nil)
        #expect(alone.ownerLeft(cleanly: true, at: Self.at(0), mayHold: true) == .end)
    }
}

/// ``OutputLog``: numbering, trimming within its capacity, and where a resuming or joining client starts.
@Suite struct OutputLogTests {
    static func append(_ log: inout OutputLog, _ text: String) {
        log.appendMessage(opcode: .text, length: text.utf8.count)
        log.appendPayload(ByteBuffer(string: text))
    }

    static func texts(_ entries: [OutputLog.Entry]) -> [String] {
        entries.compactMap { if case .payload(let bytes) = $0 { String(buffer: bytes) } else { nil } }
    }

    @Test func messagesAreNumberedAndReadInOrderInBoundedBatches() {
        var log = OutputLog(capacity: 1000)
        for number in 1...5 { Self.append(&log, "message \(number)") }
        #expect(log.latestSequence == 5)
        let (first, next) = log.read(from: 0, maxBytes: 20)
        #expect(Self.texts(first) == ["message 1", "message 2"])
        let (rest, end) = log.read(from: next, maxBytes: 1000)
        #expect(Self.texts(rest) == ["message 3", "message 4", "message 5"])
        #expect(end == log.endIndex)
        #expect(log.read(from: end, maxBytes: 1000).entries.isEmpty)
        // One entry always goes, however small the batch.
        #expect(log.read(from: 1, maxBytes: 1).entries.count == 1)
    }

    @Test func itKeepsNoMoreThanItsCapacityUnlessAProtectedReaderHasNotReachedIt() {
        var log = OutputLog(capacity: 20)
        for number in 1...5 { Self.append(&log, "message \(number)") }  // 45 bytes
        #expect(log.trim(protecting: nil) == true)
        #expect(log.keptBytes <= 20)
        #expect(log.oldestKeptSequence == 4)
        // A reader still at message 4 keeps it even when more comes.
        let protected = log.messageStart(atOrAfter: log.firstIndex)
        Self.append(&log, "message 6")
        #expect(log.trim(protecting: protected) == false)
        #expect(log.oldestKeptSequence == 4)
        #expect(log.keptBytes == 27)
    }

    @Test func aResumeStartsAfterTheLastMessageTheClientGot() {
        var log = OutputLog(capacity: 25)
        for number in 1...4 { Self.append(&log, "message \(number)") }
        log.trim(protecting: nil)  // keeps 3 and 4
        guard case .at(let index) = log.resumePoint(after: 3) else {
            Issue.record("message 4 is kept")
            return
        }
        #expect(Self.texts(log.read(from: index, maxBytes: 100).entries) == ["message 4"])
        #expect(log.resumePoint(after: 4) == .at(log.endIndex))
        #expect(log.resumePoint(after: 1) == .gap(oldestKept: 3))
        #expect(log.resumePoint(after: 9) == .ahead(latest: 4))
        #expect(log.bytesBehind(log.endIndex) == 0)
        #expect(log.bytesBehind(index) == 9)
    }

    @Test func aLateJoinerStartsOnAMessageBoundaryWithTheLastFew() {
        var log = OutputLog(capacity: 1000)
        for number in 1...5 { Self.append(&log, "message \(number)") }
        #expect(Self.texts(log.read(from: log.startOfLast(2), maxBytes: 100).entries) == ["message 4", "message 5"])
        #expect(log.startOfLast(0) == log.endIndex)
        #expect(log.startOfLast(50) == 0)
        // A message whose header was trimmed away is skipped whole.
        var trimmed = OutputLog(capacity: 12)
        trimmed.appendMessage(opcode: .binary, length: 20)
        trimmed.appendPayload(ByteBuffer(string: "0123456789"))
        trimmed.appendPayload(ByteBuffer(string: "abcdefghij"))
        Self.append(&trimmed, "next")
        trimmed.trim(protecting: nil)
        #expect(Self.texts(trimmed.read(from: trimmed.messageStart(atOrAfter: 0), maxBytes: 100).entries) == ["next"])
    }

    @Test func payloadIsCopiedSoNoReadBufferIsKeptAlive() {
        var log = OutputLog(capacity: 1000)
        var read = ByteBuffer(string: "0123456789")
        let slice = read.readSlice(length: 4)!
        log.appendMessage(opcode: .binary, length: 4)
        log.appendPayload(slice)
        guard case .payload(let kept) = log.read(from: 1, maxBytes: 100).entries.first else {
            Issue.record("payload kept")
            return
        }
        #expect(String(buffer: kept) == "0123")
        #expect(kept.capacity == 4)
    }
}
