import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing
@testable import WSGate

/// Slowloris and a handshake flood against a real wsgate process, while legitimate clients on
/// other addresses keep working. Prints what it saw: statuses, drop times and the gateway's memory.
@Suite(.serialized, .timeLimit(.minutes(2))) struct HostileClientTests {
    static let slowConnections = 2000
    static let floodHandshakes = 300

    @Test func slowHeadersAndAHandshakeFloodDoNotLockOutOthers() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        defer { group.shutdownGracefully { _ in } }
        // The service in its own process, like the gateway: what is measured is the gateway.
        let (echo, ports) = try await GatewayProcess.demoBackend(tcpEcho: true)
        defer { echo.stop() }
        let echoPort = ports["tcp"] ?? 0
        let config = Scratch.path("wsgate-hostile", suffix: ".yaml")
        try """
            server: {handshake_timeout: 12s}
            limits: {handshake_rate_per_ip: 20, max_connections_per_ip: 2500}
            listeners: [{address: "127.0.0.1:0"}]
            routes: [{path: /tcp, backend: "tcp://127.0.0.1:\(echoPort)", limits: {connect_timeout: 30s}}]
            """.write(to: config, atomically: true, encoding: .utf8)
        // The timeout under test: the file's, not the suite's patient default. The connect timeout is
        // not under test and is as patient as the reads below: beside the whole suite this one-thread
        // debug gateway waited for a core 14.8 s of a 16.3 s flood (its schedstat) while the service
        // was idle and no SYN was sent twice: a connect the kernel finishes at once can be seen by the
        // gateway's loop after its 5 s timer fired, a 504 (4 of 300 in two CI runs) that judges the
        // starved process, not the service.
        let gateway = try await GatewayProcess(arguments: ["--config", config.path, "--log-level", "info", "--threads", "1"], environment: ["WSGATE_HANDSHAKE_TIMEOUT": ""])
        defer { gateway.stop() }
        try await gateway.waitUntilListening()
        let port = gateway.port
        let baseline = gateway.residentBytes

        // Slowloris: 2,000 connections from 127.0.0.2, each trickling a request head a byte a second.
        let started = NIODeadline.now()
        let scheduledAtStart = gateway.schedulerSeconds
        var slow: [TestClient] = []
        // How long each slow connection lived: it must be the handshake timeout, not less. (Opening
        // 2,000 takes seconds on a busy machine, so the first may time out before the last opens.)
        let lifetimes = NIOLockedValueBox<[TimeAmount]>([])
        let lastClosed = NIOLockedValueBox(NIODeadline.uptimeNanoseconds(0))
        for batch in stride(from: 0, to: Self.slowConnections, by: 250) {
            slow += try await withThrowingTaskGroup(of: TestClient.self) { tasks in
                for _ in batch..<min(batch + 250, Self.slowConnections) {
                    tasks.addTask {
                        let client = try await TestClient.connect(port: port, from: "127.0.0.2", group: group)
                        let connected = client.connectedAt
                        // Both ends read on the event loop, not when this task gets to run.
                        client.channel.closeFuture.whenComplete { _ in
                            let now = NIODeadline.now()
                            lifetimes.withLockedValue { $0.append(now - connected) }
                            lastClosed.withLockedValue { $0 = max($0, now) }
                        }
                        return client
                    }
                }
                return try await tasks.reduce(into: []) { $0.append($1) }
            }
        }
        let opened = slow.map(\.connectedAt).max() ?? NIODeadline.now()
        let head = Array("GET /tcp HTTP/1.1\r\nHost: x\r\n".utf8)
        let position = NIOLockedValueBox(0)
        let trickled = slow
        let trickle = group.next().scheduleRepeatedTask(initialDelay: .zero, delay: .seconds(1)) { _ in
            let index = position.withLockedValue { value -> Int in
                defer { value = (value + 1) % head.count }
                return value
            }
            for client in trickled where client.channel.isActive {
                client.channel.writeAndFlush(client.channel.allocator.buffer(bytes: [head[index]]), promise: nil)
            }
        }
        defer { trickle.cancel() }
        try await Task.sleep(nanoseconds: 300_000_000)
        let held = gateway.residentBytes

        // A flood of handshakes from 127.0.0.3: beyond the first 40 (a burst of 2 s × 20/s), 429s.
        var floodStatuses: [Int: Int] = [:]
        let floodStarted = NIODeadline.now()
        let (scheduledBefore, echoScheduledBefore, synRetransmitsBefore) = (gateway.schedulerSeconds, echo.schedulerSeconds, GatewayProcess.synRetransmits)
        for batch in stride(from: 0, to: Self.floodHandshakes, by: 50) {
            let statuses = try await withThrowingTaskGroup(of: Int.self) { tasks in
                for _ in batch..<(batch + 50) {
                    tasks.addTask {
                        let client = try await TestClient.connect(port: port, from: "127.0.0.3", group: group)
                        defer { Task { await client.close() } }
                        try await client.send(TestClient.handshake(path: "/tcp"))
                        // Bounds, not timings: with both cores busy beside the suite, one gateway
                        // thread answering 2,000 trickling connections can take seconds.
                        return try await client.readHead(timeout: .seconds(30)).0
                    }
                }
                return try await tasks.reduce(into: []) { $0.append($1) }
            }
            for status in statuses { floodStatuses[status, default: 0] += 1 }
        }
        let floodSeconds = Double((NIODeadline.now() - floodStarted).nanoseconds) / 1e9
        let (scheduledAfter, echoScheduledAfter, synRetransmits) = (gateway.schedulerSeconds, echo.schedulerSeconds, GatewayProcess.synRetransmits - synRetransmitsBefore)
        // The bucket: a burst of 40, then 20 a second.
        let allowed = 40 + Int((floodSeconds * 20).rounded(.up)) + 2

        // Meanwhile, legitimate clients on other addresses get through and echo.
        let legitStarted = NIODeadline.now()
        for index in 0..<20 {
            let client = try await TestClient.connect(port: port, from: "127.0.1.\(index + 1)", group: group)
            try await client.send(TestClient.handshake(path: "/tcp"))
            let (status, _) = try await client.readHead(timeout: .seconds(30))
            #expect(status == 101, "legitimate client \(index) got \(status)")
            try await client.sendFrame(2, [UInt8(index)])
            #expect(try await client.readMessage(timeout: .seconds(30)).payload == [UInt8(index)])
            await client.close()
        }
        let legitMillis = (NIODeadline.now() - legitStarted).nanoseconds / 1_000_000
        let stillOpen = slow.filter { $0.channel.isActive }.count

        // The handshake timeout drops every slow connection, however it trickles.
        let openedSeconds = Double((opened - started).nanoseconds) / 1e9
        for client in slow { try await client.waitForEOF(timeout: .seconds(30)) }
        let droppedAfter = Double((lastClosed.withLockedValue { $0 } - started).nanoseconds) / 1e9
        let waitedForCore = gateway.schedulerSeconds.waiting - scheduledAtStart.waiting

        let perSlowKiB = Double(held - baseline) / 1024 / Double(Self.slowConnections)
        print("""
            hostile clients: \(Self.slowConnections) slow-header connections, \(stillOpen) still open (none before its timeout) while 20 legitimate clients \
            completed in \(legitMillis) ms; opened in \(String(format: "%.1f", openedSeconds)) s, all dropped by the 12 s handshake timeout after \(String(format: "%.1f", droppedAfter)) s; \
            flood of \(Self.floodHandshakes) handshakes from one IP in \(String(format: "%.1f", floodSeconds)) s: \(floodStatuses.sorted { $0.key < $1.key }.map { "\($0.value)× \($0.key)" }.joined(separator: ", ")) \
            (meanwhile the gateway ran \(String(format: "%.2f", scheduledAfter.running - scheduledBefore.running)) s and waited \(String(format: "%.2f", scheduledAfter.waiting - scheduledBefore.waiting)) s for a core, \
            the echo service ran \(String(format: "%.2f", echoScheduledAfter.running - echoScheduledBefore.running)) s and waited \(String(format: "%.2f", echoScheduledAfter.waiting - echoScheduledBefore.waiting)) s, \
            the host sent \(synRetransmits) SYNs again); \
            gateway RSS \(baseline / 1024) KiB idle → \(held / 1024) KiB with the slow connections (\(String(format: "%.1f", perSlowKiB)) KiB each)
            """)
        let shortest = lifetimes.withLockedValue { $0.min() } ?? .zero
        #expect(lifetimes.withLockedValue { $0.count } == Self.slowConnections)
        // Every slow connection was dropped by its handshake timeout, as the gateway saw it: one
        // timeout line each ("no request within" before its first byte arrived, "no complete
        // request within" after). (The client's own clock cannot say so: it learns of its connection
        // late when the whole suite runs beside it, by 2 s and more on two busy cores.)
        let timedOut = gateway.log.split(separator: "\n").filter { $0.contains("client=127.0.0.2:") && $0.contains("request within 12s") }.count
        #expect(timedOut == Self.slowConnections, "\(timedOut) of \(Self.slowConnections) slow connections ended by the handshake timeout; log: \(gateway.log.suffix(3000))")
        // A drop by anything else (a limit, the flood) would come within a second or two of the connect.
        #expect(shortest >= .seconds(5), "a slow connection was dropped after \(shortest.prettyDescription), before its 12 s handshake timeout; log: \(gateway.log.suffix(3000))")
        #expect((floodStatuses[101] ?? 0) <= allowed, "\(floodStatuses), at most \(allowed) allowed")
        // On a failure, what the gateway said about the other answers (its lines but the 429s, the
        // slow connections' timeouts and ended sessions); built only then (the comment is lazy).
        #expect((floodStatuses[429] ?? 0) == Self.floodHandshakes - (floodStatuses[101] ?? 0), "\(floodStatuses); log: \(gateway.log.split(separator: "\n").filter { !$0.contains("request within") && !$0.contains("status=429") && !$0.contains("session ended") }.suffix(60).joined(separator: "\n"))")
        // Late by at most 15 s plus the time the gateway's threads waited for a core: a timer cannot
        // fire while its thread does not run (rv79, beside a CPU hog and the suite: the gateway waited
        // 22 s of a 23.7 s flood, and its last drop came 0.3 s past a bound without the wait). A
        // gateway that spins or wedges runs or sleeps instead of waiting, and stays outside the bound.
        #expect(droppedAfter >= 10 && droppedAfter < 12 + openedSeconds + 15 + waitedForCore, "dropped after \(droppedAfter) s; the gateway waited \(waitedForCore) s for a core")
        #expect(perSlowKiB < 32, "each slow connection costs \(perSlowKiB) KiB")
    }
}
