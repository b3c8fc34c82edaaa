import NIOCore
import NIOHTTP1
import Testing
@testable import WSGate

@Suite struct BackendPoolTests {
    static func pool(_ count: Int, _ balance: BalancePolicy, attempts: Int = 3, passive: PassiveHealthSettings = PassiveHealthSettings(),
                     check: HealthCheckSettings? = nil) -> BackendPool {
        var settings = PoolSettings()
        settings.balance = balance
        settings.connectAttempts = attempts
        let targets = (0..<count).map { BackendTarget(url: .tcp(host: "10.0.0.\($0 + 1)", port: 23), check: check, passive: passive) }
        return BackendPool(targets: targets, settings: settings)
    }

    static func head(_ uri: String = "/", _ headers: [(String, String)] = []) -> HTTPRequestHead {
        HTTPRequestHead(version: .http1_1, method: .GET, uri: uri, headers: HTTPHeaders(headers))
    }

    static func client(_ ip: String) -> SocketAddress { try! SocketAddress(ipAddress: ip, port: 40000) }

    static func names(_ targets: [BackendTarget]) -> [String] {
        targets.map { if case .tcp(let host, _) = $0.url { return String(host.split(separator: ".").last!) } else { return "?" } }
    }

    @Test func roundRobinTakesTurnsAndListsTheRestForFailover() {
        let pool = Self.pool(3, .roundRobin)
        let firsts = (0..<6).map { _ in Self.names(pool.candidates(clientAddress: nil, head: Self.head()))[0] }
        #expect(firsts == ["1", "2", "3", "1", "2", "3"])
        #expect(Self.names(pool.candidates(clientAddress: nil, head: Self.head())) == ["1", "2", "3"])
        #expect(Self.pool(5, .roundRobin, attempts: 2).candidates(clientAddress: nil, head: Self.head()).count == 2, "bounded by connect_attempts")
    }

    @Test func leastConnectionsPrefersTheEmptiestTarget() {
        let pool = Self.pool(3, .leastConnections)
        pool.targets[0].sessionOpened()
        pool.targets[0].sessionOpened()
        pool.targets[1].sessionOpened()
        #expect(Self.names(pool.candidates(clientAddress: nil, head: Self.head())) == ["3", "2", "1"])
        pool.targets[2].sessionOpened()
        pool.targets[2].sessionOpened()
        pool.targets[2].sessionOpened()
        #expect(Self.names(pool.candidates(clientAddress: nil, head: Self.head())) == ["2", "1", "3"])
    }

    @Test func hashingIsStableAndMovesOnlyTheKeysOfATargetThatLeaves() {
        let pool = Self.pool(4, .hashClientIP, attempts: 4)
        let clients = (1...200).map { "192.0.2.\($0)" }
        let before = clients.map { Self.names(pool.candidates(clientAddress: Self.client($0), head: Self.head()))[0] }
        #expect(before == clients.map { Self.names(pool.candidates(clientAddress: Self.client($0), head: Self.head()))[0] }, "same client, same target")
        let spread = Dictionary(grouping: before, by: { $0 }).mapValues(\.count)
        #expect(spread.count == 4 && spread.values.allSatisfy { $0 > 25 }, "spread over the targets: \(spread)")

        // Target 2 is ejected: its clients move, nobody else does, and each moved client goes where
        // its own failover order said.
        let passive = pool.targets[1]
        for _ in 0..<3 { _ = passive.connectFailed(.unreachable("refused"), at: .now()) }
        for (index, client) in clients.enumerated() {
            let now = Self.names(pool.candidates(clientAddress: Self.client(client), head: Self.head()))[0]
            if before[index] == "2" { #expect(now != "2") } else { #expect(now == before[index], "\(client) moved") }
        }
    }

    @Test func headerAndQueryKeysHashAndMissingKeysTakeTurns() {
        let header = Self.pool(3, .hashHeader("X-Session"))
        let withKey = Self.head("/", [("X-Session", "abc")])
        let first = Self.names(header.candidates(clientAddress: nil, head: withKey))
        for _ in 0..<5 { #expect(Self.names(header.candidates(clientAddress: nil, head: withKey)) == first) }
        let turns = Set((0..<3).map { _ in Self.names(header.candidates(clientAddress: nil, head: Self.head()))[0] })
        #expect(turns.count == 3, "no key: round robin")

        let query = Self.pool(3, .hashQuery("sid"))
        let a = Self.names(query.candidates(clientAddress: nil, head: Self.head("/app?x=1&sid=42")))
        #expect(Self.names(query.candidates(clientAddress: nil, head: Self.head("/app?sid=42"))) == a)
        #expect(QueryParameters(target: "/a?x=1&sid=42#f").value("sid") == "42")
        #expect(QueryParameters(target: "/a?sidx=1").value("sid") == nil)
        #expect(QueryParameters(target: "/a?sid").value("sid") == "")
    }

    @Test func passiveEjectionDoublesOnProbationAndASuccessResetsIt() {
        var passive = PassiveHealthSettings()
        passive.failures = 2
        passive.ejectFor = .seconds(10)
        passive.maxEjectFor = .seconds(25)
        let pool = Self.pool(2, .roundRobin, passive: passive)
        let target = pool.targets[0]
        let start = NIODeadline.now()
        #expect(target.connectFailed(.unreachable("x"), at: start) == nil)
        #expect(target.connectFailed(.unreachable("x"), at: start) == .seconds(10))
        #expect(!target.isAvailable(at: start + .seconds(9)))
        #expect(Self.names(pool.candidates(clientAddress: nil, head: Self.head(), at: start + .seconds(9))) == ["2"])
        #expect(target.isAvailable(at: start + .seconds(10)))
        // On probation: one failure ejects it again, for twice as long, capped.
        #expect(target.connectFailed(.unreachable("x"), at: start + .seconds(11)) == .seconds(20))
        #expect(target.isAvailable(at: start + .seconds(31)))
        #expect(target.connectFailed(.timedOut(after: "1s"), at: start + .seconds(32)) == .seconds(25))
        #expect(target.snapshot(at: start + .seconds(33)).ejections == 3)
        // A success ends probation: two failures are needed again, and the period starts over.
        #expect(target.isAvailable(at: start + .seconds(60)))
        target.connectSucceeded()
        #expect(target.connectFailed(.unreachable("x"), at: start + .seconds(61)) == nil)
        #expect(target.connectFailed(.unreachable("x"), at: start + .seconds(61)) == .seconds(10))
    }

    @Test func everyTargetUnavailableMeansTryingThemAll() {
        var passive = PassiveHealthSettings()
        passive.failures = 1
        let pool = Self.pool(2, .roundRobin, passive: passive)
        let now = NIODeadline.now()
        for target in pool.targets { _ = target.connectFailed(.unreachable("x"), at: now) }
        #expect(pool.candidates(clientAddress: nil, head: Self.head(), at: now).count == 2)
    }

    @Test func activeChecksNeedFallFailuresToGoDownAndRiseSuccessesToComeBack() {
        var check = HealthCheckSettings(kind: .tcp)
        check.rise = 2
        check.fall = 3
        let target = Self.pool(1, .roundRobin, check: check).targets[0]
        struct Refused: Error {}
        #expect(target.checked(.failure(Refused())) == nil)
        #expect(target.checked(.failure(Refused())) == nil)
        #expect(target.checked(.success(())) == nil, "a success in between starts the count over")
        #expect(target.checked(.failure(Refused())) == nil)
        #expect(target.checked(.failure(Refused())) == nil)
        #expect(target.checked(.failure(Refused())) == false)
        #expect(!target.isAvailable(at: .now()))
        #expect(target.checked(.success(())) == nil)
        #expect(target.checked(.success(())) == true)
        #expect(target.isAvailable(at: .now()))
    }
}

@Suite struct PoolConfigurationTests {
    static func route(_ yaml: String) throws -> RouteConfiguration {
        try ConfigurationLoader.parse(yaml: "listeners: [{address: \":8080\"}]\nroutes:\n" + yaml).routes[0]
    }

    @Test func readsPoolsAndTheirChecks() throws {
        let route = try Self.route("""
              - path: /vnc
                backends: ["tcp://a:5900", "tcp://b:5900", "unix:/run/vnc.sock"]
                balance: least_connections
                health_check: {interval: 2s, timeout: 500ms, rise: 1, fall: 2}
                passive_health: {failures: 5, eject_for: 30s, max_eject_for: 10m}
                limits: {connect_timeout: 1s, connect_attempts: 2, connect_deadline: 3s}
            """)
        #expect(route.backends.count == 3)
        #expect(route.backend == .tcp(host: "a", port: 5900))
        #expect(route.pool.balance == .leastConnections)
        #expect(route.pool.healthCheck?.kind == .tcp)
        #expect(route.pool.healthCheck?.interval == .seconds(2))
        #expect(route.pool.healthCheck?.timeout == .milliseconds(500))
        #expect(route.pool.passiveHealth.failures == 5)
        #expect(route.pool.passiveHealth.maxEjectFor == .minutes(10))
        #expect(route.pool.connectAttempts == 2)
        #expect(route.pool.deadline(connectTimeout: route.limits.connectTimeout) == .seconds(3))
        #expect(route.backendSummary.hasPrefix("pool[tcp://a:5900, tcp://b:5900, unix:/run/vnc.sock] balance=least_connections"))

        let ws = try Self.route("""
              - path: /
                backends: ["ws://a/app", "wss://b/app"]
                balance: {hash_header: X-Session-Id}
                health_check: {path: /health}
            """)
        #expect(ws.pool.balance == .hashHeader("X-Session-Id"))
        #expect(ws.pool.healthCheck?.kind == .webSocket(path: "/health"))
        #expect(ws.usesBackendTLS)
        #expect(try Self.route("  - {path: /, backends: [\"ws://a/\"], balance: {hash_query: sid}}").pool.balance == .hashQuery("sid"))
        #expect(try Self.route("  - {path: /, backend: \"tcp://a:1\", balance: hash_client_ip}").pool.balance == .hashClientIP)
        // Deadline: twice the connect timeout by default, never shorter than one attempt.
        #expect(PoolSettings().deadline(connectTimeout: .seconds(5)) == .seconds(10))
        var short = PoolSettings()
        short.connectDeadline = .seconds(1)
        #expect(short.deadline(connectTimeout: .seconds(5)) == .seconds(5))
    }

    @Test func refusesPoolsThatCannotWork() {
        let cases: [(String, String)] = [
            ("  - {path: /, backends: [\"tcp://a:1\", \"ws://b/\"]}", "must all be tcp:/unix: or all ws:/wss:"),
            ("  - {path: /, backends: [\"tcp://a:1\", \"tcp://a:1\"]}", "listed twice"),
            ("  - {path: /, backends: []}", "at least one target"),
            ("  - {path: /, backend: \"tcp://a:1\", backends: [\"tcp://b:1\"]}", "not both"),
            ("  - {path: /, backends: [\"tcp://a:1\"], balance: random}", "expected round_robin"),
            ("  - {path: /, backends: [\"tcp://a:1\"], health_check: {type: websocket}}", "need ws:// or wss:// targets"),
            ("  - {path: /, backends: [\"tcp://a:1\"], health_check: {path: /x}}", "only applies to websocket checks"),
            ("  - {path: /, backends: [\"tcp://a:1\"], health_check: {rise: 0}}", "whole number from 1"),
            ("  - {path: /, backends: [\"tcp://a:1\"], passive_health: {eject_for: 1m, max_eject_for: 10s}}", "shorter than eject_for"),
            ("  - {path: /, backends: [\"tcp://a:1\"], limits: {connect_attempts: 0}}", "whole number from 1"),
            ("  - {path: /, backends: [\"tcp://a:1\"], health_check: {interval: 0s}}", "health_check.interval"),
        ]
        for (yaml, message) in cases {
            do {
                _ = try Self.route(yaml)
                Issue.record("accepted: \(yaml)")
            } catch {
                #expect("\(error)".contains(message), "\(yaml): \(error)")
            }
        }
    }
}
