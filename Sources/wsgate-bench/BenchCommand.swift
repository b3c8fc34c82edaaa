import ArgumentParser
import DemoBackends
import Foundation
import NIOCore
import NIOPosix
import WSGate

/// `wsgate-bench`: drives the workloads of the shared harness (`../shared/bench`) against a wsgate
/// it starts itself, in front of echo backends it runs in-process, and prints the figures. Every
/// echoed byte is checked, so a broken relay fails instead of scoring.
@main
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wsgate-bench",
        abstract: "Measure wsgate: throughput, latency, connection rate and idle memory, over loopback."
    )

    @Option(help: "The wsgate binary (default: the one next to this tool).")
    var gateway: String?

    @Option(help: "Event-loop threads for wsgate.")
    var threads = 1

    @Option(help: "Pin wsgate to this CPU (taskset), so the load side runs on the others.")
    var pinCPU: Int?

    @Option(help: "Paths to measure: ws (WS→WS), tcp (WS→TCP), lines (WS→TCP with framing: lines, JSON text messages), h2 (WebSocket over HTTP/2, RFC 8441, cleartext → WS), comma-separated.")
    var paths = "ws,tcp,h2"

    @Flag(help: "Also measure HAProxy (haproxy on PATH, one thread, pinned like wsgate) on the ws and h2 paths, in the same run.")
    var haproxy = false

    @Option(help: "Workloads: throughput, latency, connrate, idle, compression (WS→WS only), comma-separated.")
    var modes = "throughput,latency,connrate,idle,compression"

    @Option(help: "Message sizes for throughput, in bytes, comma-separated.")
    var sizes = "64,4096,65536"

    @Option(help: "Seconds measured per run (after a warm-up of a quarter of it).")
    var duration = 4.0

    @Option(help: "Messages per second in the latency run (64-byte messages over 16 connections).")
    var rate = 2000

    @Option(help: "Connections held open in the idle run.")
    var idleConnections = 2000

    func run() async throws {
        FileDescriptorLimit.raiseToHardLimit()
        let binary = self.gateway ?? URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("wsgate").path
        guard FileManager.default.isExecutableFile(atPath: binary) else { throw ValidationError("no wsgate binary at \(binary) (use --gateway)") }
        let backendGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loadGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let wsEcho = try await WebSocketEchoServer.start(host: "127.0.0.1", port: 0, group: backendGroup)
        let tcpEcho = try await TCPServices.startEcho(host: "127.0.0.1", port: 0, group: backendGroup)
        let measured = Duration.milliseconds(Int(self.duration * 1000))
        let warmup = measured / 4
        let modes = Set(self.modes.split(separator: ",").map(String.init))
        let sizes = self.sizes.split(separator: ",").compactMap { Int($0) }

        print("wsgate-bench · \(binary) --threads \(self.threads)\(self.pinCPU.map { " (pinned to CPU \($0))" } ?? "") · load: 1 thread · "
            + "backends: in-process echo · \(ProcessInfo.processInfo.activeProcessorCount) cores · \(String(format: "%g", self.duration)) s per run")
        print("µs/echo and µs/conn are the proxy's CPU time (user + system, all threads) per echoed message or per connection cycle.\n")
        for path in self.paths.split(separator: ",") {
            let backend: String
            let wsPort = wsEcho.localAddress?.port ?? 0
            switch path {
            case "ws", "h2": backend = "ws://127.0.0.1:\(wsPort)"
            case "tcp", "lines": backend = "tcp://127.0.0.1:\(tcpEcho.localAddress?.port ?? 0)"
            default: throw ValidationError("unknown path '\(path)' (ws, tcp, lines or h2)")
            }
            let http2 = path == "h2"
            for proxy in ["wsgate"] + (self.haproxy && (path == "ws" || http2) ? ["haproxy"] : []) {
                // lines: the echo service gets each message plus \n and sends it back; the gateway cuts
                // its stream at the \n again. The messages are the JSON feed's (text, no newlines).
                let lines = path == "lines"
                let routeKeys = lines ? ["framing: lines", "message_type: text"] : []
                let label = path == "ws" ? "WS→WS" : http2 ? "WS over HTTP/2 (RFC 8441, h2c) → WS" : lines ? "WS→TCP, framing: lines" : "WS→TCP"
                print("## \(label)\(proxy == "haproxy" ? " · HAProxy" : "")\n")
                var rows: [(String, String)] = []
                func report(_ name: String, _ body: () async throws -> String) async {
                    do {
                        rows.append((name, try await body()))
                    } catch {
                        rows.append((name, "FAILED: \(error)"))
                    }
                    print("| \(rows.last!.0) | \(rows.last!.1) |")
                }
                print("| workload | result |\n|---|---|")
                // A fresh gateway per run, as the shared harness does: nothing carries over.
                // `streams`: over HTTP/2, how many WebSocket streams share a connection.
                func withGateway<T>(compression: String? = nil, json: Bool = false, streams: Int? = nil, _ body: (Workloads) async throws -> T) async throws -> T {
                    let gateway = proxy == "haproxy"
                        ? try await GatewayUnderTest.launchHAProxy(backendPort: wsPort, http2: http2, cpu: self.pinCPU)
                        : try await GatewayUnderTest.launch(binary: binary, backend: backend, threads: self.threads, cpu: self.pinCPU, compression: compression, routeKeys: routeKeys)
                    defer { gateway.stop() }
                    return try await body(Workloads(loop: loadGroup.next(), gateway: gateway, boundaries: path != "tcp", json: json || lines, compression: compression != nil,
                                                    streamsPerConnection: http2 ? streams ?? 1 : nil))
                }
                if lines {
                    // Framing's cost: the JSON feed through a TCP echo, cut into lines on the way back
                    // (the other workloads' binary messages may contain \n, so they are not run here).
                    // Against the same feed through `framing: raw`, one message per read, for the difference.
                    for (name, keys) in [("raw", ["message_type: text"]), ("lines", routeKeys)] where modes.contains("throughput") {
                        await report("throughput, JSON feed ~210 B, framing: \(name) (32 conns × 16)") {
                            let gateway = try await GatewayUnderTest.launch(binary: binary, backend: backend, threads: self.threads, cpu: self.pinCPU, routeKeys: keys)
                            defer { gateway.stop() }
                            let workloads = Workloads(loop: loadGroup.next(), gateway: gateway, boundaries: name == "lines", json: true)
                            let figures = try await workloads.throughput(size: 0, connections: 32, window: 16, warmup: warmup, duration: measured)
                            return "\(Self.rate(figures.echoesPerSecond)) echoes/s · \(Self.micros(figures.gatewayMicrosPerEcho)) µs/echo · "
                                + "gateway core use \(figures.gatewayCoreUse.map { String(format: "%.0f%%", $0 * 100) } ?? "?")"
                        }
                    }
                    print("")
                    if rows.contains(where: { $0.1.hasPrefix("FAILED") }) { throw ExitCode(1) }
                    continue
                }
                if modes.contains("throughput") && http2 {
                    // One connection carrying every WebSocket, and one connection per WebSocket.
                    for size in sizes {
                        let (sockets, window) = size >= 65536 ? (16, 4) : (32, size >= 4096 ? 8 : 16)
                        for (streams, shape) in [(sockets, "1 conn × \(sockets) streams"), (1, "\(sockets) conns × 1 stream")] {
                            await report("throughput \(Self.bytes(size)) (\(shape) × \(window))") {
                                let figures = try await withGateway(streams: streams) {
                                    try await $0.throughput(size: size, connections: sockets, window: window, warmup: warmup, duration: measured)
                                }
                                return "\(Self.rate(figures.echoesPerSecond)) echoes/s · \(Self.micros(figures.gatewayMicrosPerEcho)) µs/echo · "
                                    + "gateway core use \(figures.gatewayCoreUse.map { String(format: "%.0f%%", $0 * 100) } ?? "?")"
                            }
                        }
                    }
                } else if modes.contains("throughput") {
                    for size in sizes {
                        let (connections, window) = size >= 65536 ? (16, 4) : (32, size >= 4096 ? 8 : 16)
                        await report("throughput \(Self.bytes(size)) (\(connections) conns × \(window))") {
                            let figures = try await withGateway { try await $0.throughput(size: size, connections: connections, window: window, warmup: warmup, duration: measured) }
                            return "\(Self.rate(figures.echoesPerSecond)) echoes/s · \(Self.micros(figures.gatewayMicrosPerEcho)) µs/echo · "
                                + "gateway core use \(figures.gatewayCoreUse.map { String(format: "%.0f%%", $0 * 100) } ?? "?")"
                        }
                    }
                }
                if modes.contains("latency") {
                    await report("latency, 64 B at \(self.rate)/s (\(http2 ? "16 streams on 1 conn" : "16 conns"))") {
                        let figures = try await withGateway(streams: 16) { try await $0.latency(size: 64, connections: 16, rate: self.rate, warmup: warmup, duration: measured) }
                        let percentiles = figures.percentiles.map { "\($0.0) \(String(format: "%.0f", $0.1))" }.joined(separator: " · ")
                        return "\(percentiles) µs · late sends \(figures.late) · \(Self.micros(figures.gatewayMicrosPerEcho)) µs/echo"
                    }
                }
                if modes.contains("connrate") {
                    await report("connection cycles (16 in parallel\(http2 ? ", 1 stream each" : ""))") {
                        let figures = try await withGateway { try await $0.connectionRate(concurrency: 16, warmup: warmup, duration: measured) }
                        return "\(Self.rate(figures.perSecond)) conns/s · \(Self.micros(figures.gatewayMicrosPerConnection)) µs/conn"
                    }
                }
                if modes.contains("idle") && !http2 {
                    await report("idle connections") {
                        let figures = try await withGateway { try await $0.idle(connections: self.idleConnections, concurrency: 200) }
                        return "\(figures.held) held · \(figures.kibPerConnection.map { String(format: "%.1f", $0) } ?? "?") KiB RSS per connection"
                    }
                }
                if modes.contains("compression") && path == "ws" && proxy == "wsgate" {
                    // The same JSON feed without and with permessage-deflate (the client offers it both times).
                    for (label, setting) in [("off", "off"), ("on", "on")] {
                        await report("JSON feed, compression \(label) (16 conns × 4)") {
                            let figures = try await withGateway(compression: setting, json: true) {
                                try await $0.throughput(size: 0 /* JSON messages size themselves */, connections: 16, window: 4, warmup: warmup, duration: measured)
                            }
                            return "\(Self.rate(figures.echoesPerSecond)) echoes/s · \(Self.micros(figures.gatewayMicrosPerEcho)) µs/echo · "
                                + String(format: "%.0f B on the client wire per echo (both ways)", figures.wireBytesPerEcho)
                        }
                    }
                    // What a compressing session costs while idle, per setting (one compressed echo each).
                    for (label, setting) in [("context takeover (default)", "on"),
                                             ("server_no_context_takeover", "{server_no_context_takeover: true}"),
                                             ("window_bits 10, memory_level 4, client_window_bits 10", "{window_bits: 10, memory_level: 4, client_window_bits: 10}")] {
                        await report("idle, compression: \(label)") {
                            let figures = try await withGateway(compression: setting, json: true) {
                                try await $0.idle(connections: min(self.idleConnections, 500), concurrency: 100)
                            }
                            return "\(figures.held) held · \(figures.kibPerConnection.map { String(format: "%.1f", $0) } ?? "?") KiB RSS per connection"
                        }
                    }
                }
                print("")
                if rows.contains(where: { $0.1.hasPrefix("FAILED") }) { throw ExitCode(1) }
            }
        }
        try await wsEcho.close()
        try await tcpEcho.close()
        try await loadGroup.shutdownGracefully()
        try await backendGroup.shutdownGracefully()
    }

    static func bytes(_ size: Int) -> String {
        size >= 1024 && size % 1024 == 0 ? "\(size / 1024) KiB" : "\(size) B"
    }

    static func rate(_ value: Double) -> String {
        value >= 1e6 ? String(format: "%.2fM", value / 1e6) : value >= 1e4 ? String(format: "%.0fk", value / 1e3) : String(format: "%.0f", value)
    }

    static func micros(_ value: Double?) -> String {
        guard let value else { return "?" }
        return value >= 100 ? String(format: "%.0f", value) : String(format: "%.2f", value)
    }
}
