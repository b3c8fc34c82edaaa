import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// The demo's legacy service: a line-oriented chat room with a few commands, the kind of plain
/// TCP protocol (think MUDs, consoles, telnet-style admin ports) that browsers cannot reach.
/// Several instances (a pool behind wsgate) share one room, so every browser sees every other.
///
/// Lines in, lines out: `/help`, `/time`, `/uptime`, `/who`, `/nick NAME`, `/stats`; anything
/// else is said to the room. Lines longer than 1 KiB are refused, not buffered.
public final class ConsoleRoom: Sendable {
    struct Member {
        var name: String
        var instance: String
        var channel: Channel
        /// Whether the room was told of the join: `/who` lists only these, so a probe that is
        /// connected at that moment (a pool's health check) is not counted as a person.
        var announced = false
    }

    private let members = NIOLockedValueBox<[ObjectIdentifier: Member]>([:])
    let started = Date()
    private static let adjectives = ["amber", "brisk", "calm", "deft", "eager", "fuzzy", "gentle", "hazel", "jolly", "keen", "lucid", "mellow",
                                     "nimble", "olive", "plucky", "quiet", "rapid", "sunny", "tidy", "vivid", "witty", "zesty"]
    private static let animals = ["otter", "falcon", "lynx", "panda", "heron", "koala", "marten", "newt", "orca", "puffin", "quokka", "raven",
                                  "stoat", "tapir", "urchin", "vole", "walrus", "yak", "zebra", "badger", "corgi", "dingo"]

    public init() {}

    /// Starts one instance of the service on the room.
    public func start(instance: String, host: String, port: Int, group: EventLoopGroup) async throws -> Channel {
        try await ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ConsoleHandler(room: self, instance: instance))
                }
            }
            .bind(host: host, port: port)
            .get()
    }

    /// A free name like `calm-otter`.
    func join(_ handler: ConsoleHandler, channel: Channel) -> String {
        self.members.withLockedValue { members in
            var name: String
            repeat {
                name = "\(Self.adjectives.randomElement()!)-\(Self.animals.randomElement()!)"
            } while members.values.contains { $0.name == name }
            members[ObjectIdentifier(handler)] = Member(name: name, instance: handler.instance, channel: channel)
            return name
        }
    }

    func leave(_ handler: ConsoleHandler) -> Member? {
        self.members.withLockedValue { $0.removeValue(forKey: ObjectIdentifier(handler)) }
    }

    /// Marks the member announced; false if it already was (or has left), so it is told once.
    func markAnnounced(_ handler: ConsoleHandler) -> Bool {
        self.members.withLockedValue { members in
            guard let member = members[ObjectIdentifier(handler)], !member.announced else { return false }
            members[ObjectIdentifier(handler)]?.announced = true
            return true
        }
    }

    func rename(_ handler: ConsoleHandler, to name: String) -> Bool {
        self.members.withLockedValue { members in
            guard !members.values.contains(where: { $0.name == name }) else { return false }
            members[ObjectIdentifier(handler)]?.name = name
            return true
        }
    }

    var who: [(name: String, instance: String)] {
        self.members.withLockedValue { $0.values.filter(\.announced).map { ($0.name, $0.instance) } }.sorted { $0.name < $1.name }
    }

    /// One line to everyone in the room (each member's own event loop writes it).
    func broadcast(_ line: String) {
        for member in self.members.withLockedValue({ Array($0.values) }) {
            let channel = member.channel
            channel.eventLoop.execute {
                channel.writeAndFlush(channel.allocator.buffer(string: line + "\n"), promise: nil)
            }
        }
    }
}

final class ConsoleHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    static let maxLineBytes = 1024

    private let room: ConsoleRoom
    let instance: String
    private var name = ""
    private var pending: [UInt8] = []
    private var lines = 0
    /// Joins are announced after a moment (the room records it), so probes (health checks
    /// connect and leave at once) do not fill the room with arrivals and departures.
    private var announcement: Scheduled<Void>?
    static let announceAfter = TimeAmount.milliseconds(800)

    init(room: ConsoleRoom, instance: String) {
        self.room = room
        self.instance = instance
    }

    func channelActive(context: ChannelHandlerContext) {
        self.name = self.room.join(self, channel: context.channel)
        self.send("* connected to \(self.instance) as \(self.name). Type /help for commands, or just chat.", context: context)
        context.flush()
        self.announcement = context.eventLoop.scheduleTask(in: Self.announceAfter) { self.announceJoin() }
    }

    private func announceJoin() {
        guard self.room.markAnnounced(self) else { return }
        self.announcement?.cancel()
        self.room.broadcast("* \(self.name) joined (via \(self.instance))")
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.announcement?.cancel()
        if let member = self.room.leave(self), member.announced { self.room.broadcast("* \(member.name) left") }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.pending += Self.unwrapInboundIn(data).readableBytesView
        while let newline = self.pending.firstIndex(of: UInt8(ascii: "\n")) {
            let line = String(decoding: self.pending[..<newline], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            self.pending.removeSubrange(...newline)
            self.answer(line, context: context)
        }
        if self.pending.count > Self.maxLineBytes {
            self.pending.removeAll()
            self.send("! line longer than \(Self.maxLineBytes) bytes dropped", context: context)
        }
    }

    private func answer(_ line: String, context: ChannelHandlerContext) {
        guard !line.isEmpty else { return }
        self.announceJoin()  // before anything it says
        self.lines += 1
        let words = line.split(separator: " ", maxSplits: 1)
        switch words[0].lowercased() {
        case "/help":
            self.send("commands: /time  /uptime  /who  /nick NAME  /stats  /help — anything else is said to the room", context: context)
        case "/time":
            self.send("time: \(ISO8601DateFormatter().string(from: Date()))", context: context)
        case "/uptime":
            self.send(String(format: "uptime: %.0f s", Date().timeIntervalSince(self.room.started)), context: context)
        case "/who":
            let who = self.room.who
            self.send("who: \(who.count) online — " + who.map { "\($0.name) (\($0.instance))" }.joined(separator: ", "), context: context)
        case "/stats":
            self.send("stats: you are \(self.name) on \(self.instance), \(self.lines) lines sent this session", context: context)
        case "/nick":
            let wanted = words.count > 1 ? String(words[1].prefix(24)).filter { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" } : ""
            guard !wanted.isEmpty else {
                self.send("! usage: /nick NAME (letters, digits, - and _)", context: context)
                return
            }
            let old = self.name
            guard self.room.rename(self, to: wanted) else {
                self.send("! \(wanted) is taken", context: context)
                return
            }
            self.name = wanted
            self.room.broadcast("* \(old) is now \(wanted)")
        default:
            if line.hasPrefix("/") {
                self.send("! unknown command \(words[0]) — try /help", context: context)
            } else {
                self.room.broadcast("<\(self.name)> \(line)")
            }
        }
    }

    private func send(_ line: String, context: ChannelHandlerContext) {
        context.write(Self.wrapOutboundOut(context.channel.allocator.buffer(string: line + "\n")), promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event { context.close(promise: nil) }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
