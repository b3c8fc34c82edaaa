import NIOCore
import NIOPosix

/// The four workloads of the shared harness (`../shared/bench`), driven from one event loop so the
/// load side costs one core at most: throughput, latency at a fixed rate, connection rate and idle
/// memory. All state lives on that loop.
final class Workloads: @unchecked Sendable {
    struct Throughput {
        var echoesPerSecond: Double
        var gatewayMicrosPerEcho: Double?
        var gatewayCoreUse: Double?
        /// Bytes on the client's wire per echo, both directions (frame headers included).
        var wireBytesPerEcho: Double
    }

    struct Latency {
        var percentiles: [(String, Double)]
        var late: Int
        var gatewayMicrosPerEcho: Double?
    }

    struct ConnectionRate {
        var perSecond: Double
        var gatewayMicrosPerConnection: Double?
    }

    struct Idle {
        var held: Int
        var kibPerConnection: Double?
    }

    private let loop: EventLoop
    private let gateway: GatewayUnderTest
    private let boundaries: Bool
    /// JSON text messages, permessage-deflate offered (see ``EchoConnection``).
    private let json: Bool
    private let compression: Bool
    /// Over HTTP/2 (RFC 8441): how many WebSocket streams share one TCP connection; nil for HTTP/1.1.
    private let streamsPerConnection: Int?
    /// The HTTP/2 connection new streams go to until it has its share.
    private var http2Connection: H2EchoClient?
    private var connections: [ObjectIdentifier: EchoConnection] = [:]
    private var failure: String?
    private var counting = false
    /// Set while the bench drops connections on purpose (idle), so their ends are not failures.
    private var closing = false
    private var count = 0
    private var latencies: [Int64] = []

    init(loop: EventLoop, gateway: GatewayUnderTest, boundaries: Bool, json: Bool = false, compression: Bool = false, streamsPerConnection: Int? = nil) {
        self.streamsPerConnection = streamsPerConnection
        self.loop = loop
        self.gateway = gateway
        self.boundaries = boundaries
        self.json = json
        self.compression = compression
    }

    // MARK: Throughput

    /// `connections` connections, each keeping `window` messages of `size` bytes (or JSON ones) in flight.
    func throughput(size: Int, connections: Int, window: Int, warmup: Duration, duration: Duration) async throws -> Throughput {
        try await self.open(connections, size: size, concurrency: connections) { connection in
            for _ in 0..<window { connection.send() }
            connection.flush()
        } echoed: { connection, _ in
            connection.send()
        }
        try await Task.sleep(for: warmup)
        let wireBefore = try await self.wireBytes()
        let (echoes, seconds, cpu) = try await self.measure(for: duration)
        let wireAfter = try await self.wireBytes()
        try await self.closeAll()
        return Throughput(echoesPerSecond: Double(echoes) / seconds,
                          gatewayMicrosPerEcho: cpu.map { $0 * 1e6 / Double(max(echoes, 1)) },
                          gatewayCoreUse: cpu.map { $0 / seconds },
                          wireBytesPerEcho: Double(wireAfter - wireBefore) / Double(max(echoes, 1)))
    }

    private func wireBytes() async throws -> Int {
        try await self.loop.submit { self.connections.values.reduce(0) { $0 + $1.wireBytes } }.get()
    }

    // MARK: Latency

    /// `rate` messages per second of `size` bytes, spread over `connections`, each timed from when it
    /// was due (a stall shows up in the figures rather than delaying the schedule).
    func latency(size: Int, connections: Int, rate: Int, warmup: Duration, duration: Duration) async throws -> Latency {
        let backlog = OnLoop<[ObjectIdentifier: [NIODeadline]]>([:])
        let late = OnLoop(0)
        try await self.open(connections, size: size, concurrency: connections) { _ in
        } echoed: { connection, due in
            if self.counting { self.latencies.append((NIODeadline.now() - due).nanoseconds) }
            if var queued = backlog.value[ObjectIdentifier(connection)], !queued.isEmpty {
                connection.send(due: queued.removeFirst())
                backlog.value[ObjectIdentifier(connection)] = queued
            }
        }
        let ordered = OnLoop(try await self.loop.submit { OnLoop(Array(self.connections.values)) }.get().value)
        let interval = TimeAmount.nanoseconds(1_000_000_000 / Int64(rate))
        let start = NIODeadline.now()
        let tick = OnLoop<Int64>(0)
        let task = self.loop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
            // Catch up on every send that fell due since the last run.
            while true {
                let due = start + TimeAmount.nanoseconds(interval.nanoseconds * (tick.value + 1))
                guard due <= .now() else { break }
                let connection = ordered.value[Int(tick.value % Int64(ordered.value.count))]
                tick.value += 1
                if connection.inFlight > 0 {
                    if self.counting { late.value += 1 }
                    backlog.value[ObjectIdentifier(connection), default: []].append(due)
                } else {
                    connection.send(due: due)
                    connection.flush()
                }
            }
        }
        try await Task.sleep(for: warmup)
        let (echoes, _, cpu) = try await self.measure(for: duration)
        task.cancel()
        let samples = try await self.loop.submit { self.latencies.sorted() }.get()
        let lateSends = try await self.loop.submit { late.value }.get()
        try await self.closeAll()
        func percentile(_ p: Double) -> Double {
            guard !samples.isEmpty else { return .nan }
            return Double(samples[min(samples.count - 1, Int(Double(samples.count) * p))]) / 1000
        }
        return Latency(percentiles: [("p50", percentile(0.5)), ("p90", percentile(0.9)), ("p99", percentile(0.99)),
                                     ("p99.9", percentile(0.999)), ("max", samples.last.map { Double($0) / 1000 } ?? .nan)],
                       late: lateSends, gatewayMicrosPerEcho: cpu.map { $0 * 1e6 / Double(max(echoes, 1)) })
    }

    // MARK: Connection rate

    /// `concurrency` loops of: connect, handshake, one echo of 64 bytes, closing handshake, EOF.
    func connectionRate(concurrency: Int, warmup: Duration, duration: Duration) async throws -> ConnectionRate {
        let running = OnLoop(true)
        @Sendable func cycle() {
            guard running.value else { return }
            self.connect(size: 64) { connection in
                connection.send()
                connection.flush()
            } echoed: { connection, _ in
                connection.close()
            } closed: { connection, clean in
                if clean && self.counting { self.count += 1 }
                cycle()
            }
        }
        try await self.loop.submit { for _ in 0..<concurrency { cycle() } }.get()
        try await Task.sleep(for: warmup)
        let (cycles, seconds, cpu) = try await self.measure(for: duration)
        try await self.loop.submit { running.value = false }.get()
        try await self.waitUntil("every connection closed") { self.connections.isEmpty }
        return ConnectionRate(perSecond: Double(cycles) / seconds, gatewayMicrosPerConnection: cpu.map { $0 * 1e6 / Double(max(cycles, 1)) })
    }

    // MARK: Idle

    /// Opens `connections` (handshake and one echo each), holds them, and reports the gateway's
    /// resident memory growth per connection.
    func idle(connections: Int, concurrency: Int) async throws -> Idle {
        let before = self.gateway.residentKiB()
        let echoes = OnLoop(0)
        try await self.open(connections, size: 64, concurrency: concurrency) { connection in
            connection.send()
            connection.flush()
        } echoed: { _, _ in
            echoes.value += 1
        }
        try await self.waitUntil("every connection echoed") { echoes.value >= connections }
        try await Task.sleep(for: .seconds(1))
        let after = self.gateway.residentKiB()
        let held = try await self.loop.submit { self.connections.count }.get()
        try await self.loop.submit {
            self.closing = true
            for connection in self.connections.values { connection.abort() }
        }.get()
        try await self.waitUntil("every connection closed") { self.connections.isEmpty }
        try await self.loop.submit { self.closing = false }.get()
        var kib: Double?
        if let before, let after { kib = Double(after - before) / Double(held) }
        return Idle(held: held, kibPerConnection: kib)
    }

    // MARK: Plumbing

    /// Opens `total` connections, at most `concurrency` handshakes at a time, and waits for all.
    private func open(_ total: Int, size: Int, concurrency: Int,
                      opened: @escaping @Sendable (EchoConnection) -> Void, echoed: @escaping @Sendable (EchoConnection, NIODeadline) -> Void) async throws {
        let promise = self.loop.makePromise(of: Void.self)
        try await self.loop.submit {
            let started = OnLoop(0)
            let open = OnLoop(0)
            let settled = OnLoop(false)
            @Sendable func next() {
                guard started.value < total, self.failure == nil else { return }
                started.value += 1
                self.connect(size: size) { connection in
                    opened(connection)
                    open.value += 1
                    if open.value == total, !settled.value {
                        settled.value = true
                        promise.succeed()
                    } else {
                        next()
                    }
                } echoed: { connection, due in
                    if self.counting { self.count += 1 }
                    echoed(connection, due)
                } closed: { _, _ in
                    if let failure = self.failure, !settled.value {
                        settled.value = true
                        promise.fail(BenchError(failure))
                    }
                }
            }
            for _ in 0..<min(concurrency, total) { next() }
        }.get()
        try await promise.futureResult.get()
    }

    private func connect(size: Int, opened: @escaping @Sendable (EchoConnection) -> Void, echoed: @escaping @Sendable (EchoConnection, NIODeadline) -> Void,
                         closed: @escaping @Sendable (EchoConnection, Bool) -> Void) {
        let clean = OnLoop(true)
        let events = EchoConnection.Events(
            opened: opened,
            echoed: echoed,
            failed: { _, failure in
                clean.value = false
                if !self.closing { self.failure = self.failure ?? failure.description }
            },
            closed: { connection in
                self.connections.removeValue(forKey: ObjectIdentifier(connection))
                closed(connection, clean.value)
            }
        )
        let connection = EchoConnection(host: "127.0.0.1:\(self.gateway.port)", size: size, boundaries: self.boundaries,
                                        json: self.json, compression: self.compression, overHTTP2: self.streamsPerConnection != nil, events: events)
        self.connections[ObjectIdentifier(connection)] = connection
        // Over HTTP/2 the connection is a stream of the current HTTP/2 connection, or of a new one.
        let handler: any ChannelHandler & Sendable
        if let streamsPerConnection = self.streamsPerConnection {
            if let client = self.http2Connection, !client.isFull {
                client.open(connection)
                return
            }
            let client = H2EchoClient(authority: "127.0.0.1:\(self.gateway.port)", capacity: streamsPerConnection)
            self.http2Connection = client
            client.open(connection)
            handler = client
        } else {
            handler = connection
        }
        ClientBootstrap(group: self.loop)
            .channelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(handler) }
            }
            .connect(host: "127.0.0.1", port: self.gateway.port)
            .whenFailure { error in
                self.failure = self.failure ?? "connect: \(error)"
                connection.transportClosed()  // reported once, failed and closed (streams of that connection too)
            }
    }

    /// Counts echoes (or, for the connection rate, finished cycles) for `duration`, with the
    /// gateway's CPU time over exactly that window.
    private func measure(for duration: Duration) async throws -> (Int, Double, Double?) {
        let cpuBefore = self.gateway.cpuSeconds()
        let started = ContinuousClock.now
        try await self.loop.submit {
            self.count = 0
            self.latencies.removeAll(keepingCapacity: true)
            self.counting = true
        }.get()
        try await Task.sleep(for: duration)
        let counted = try await self.loop.submit {
            self.counting = false
            return self.count
        }.get()
        let elapsed = ContinuousClock.now - started
        let cpuAfter = self.gateway.cpuSeconds()
        if let failure = try await self.loop.submit({ self.failure }).get() { throw BenchError(failure) }
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        var cpu: Double?
        if let cpuBefore, let cpuAfter { cpu = cpuAfter - cpuBefore }
        return (counted, seconds, cpu)
    }

    /// Closing handshakes on every connection, each once its echoes are back; any failure on the way
    /// fails the workload.
    private func closeAll() async throws {
        try await self.loop.submit { for connection in self.connections.values { connection.closeWhenDrained() } }.get()
        try await self.waitUntil("every connection closed") { self.connections.isEmpty }
    }

    /// Polls `condition` on the loop for up to 30 s; a connection failure ends the wait early.
    private func waitUntil(_ what: String, _ condition: @escaping @Sendable () -> Bool) async throws {
        for _ in 0..<600 {
            let (met, failure) = try await self.loop.submit { (condition(), self.failure) }.get()
            if let failure { throw BenchError(failure) }
            if met { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw BenchError("not \(what) within 30 s")
    }
}

/// State that one event loop alone reads and writes (the bench's loop), shared by the closures it
/// runs: Sendable by that confinement, as ``Workloads`` is.
final class OnLoop<Value>: @unchecked Sendable {
    var value: Value
    init(_ value: Value) { self.value = value }
}
