import Foundation
import NIOCore
import NIOPosix
import Testing

/// Real MQTT clients through a `wsgate` process to a real broker (Debian's mosquitto, on a unix
/// socket): paho-mqtt (PyPI), node's `ws` and Chromium. The last two fail a handshake that offered
/// a subprotocol and got none back, so they check the rule a byte-stream route answers by — with
/// `--subprotocol mqtt` and without any list (the route then names the client's own offer).
@Suite(.timeLimit(.minutes(3))) struct MQTTTests {
    enum Setup: String, CaseIterable, Sendable {
        case flags = "--route"
        case flagsWithSubprotocol = "--route --subprotocol mqtt"
        case example = "examples/mqtt.yaml"
    }

    @Test(arguments: Setup.allCases)
    func mqttClientsConnectThroughAUnixRoute(setup: Setup) async throws {
        let broker = try await UnixSocketService.start("/usr/sbin/mosquitto", package: "mosquitto", writableByAll: true) { broker in
            let config = broker.directory.appendingPathComponent("mosquitto.conf")
            try "listener 0 \(broker.socket)\nallow_anonymous true\n".write(to: config, atomically: true, encoding: .utf8)
            return ["-c", config.path]
        }
        defer { broker.stop() }
        let gateway: GatewayProcess
        switch setup {
        case .flags, .flagsWithSubprotocol:
            var arguments = ["--listen", "127.0.0.1:0", "--route", "/mqtt=unix:\(broker.socket)", "--threads", "1"]
            if setup == .flagsWithSubprotocol { arguments += ["--subprotocol", "mqtt"] }
            gateway = try await GatewayProcess(arguments: arguments)
        case .example:
            let file = Peers.packageRoot.appendingPathComponent("examples/mqtt.yaml").path
            gateway = try await GatewayProcess(arguments: ["--config", file, "--listen", "127.0.0.1:0", "--threads", "1"], environment: ["MQTT_BROKER": "unix:\(broker.socket)"])
        }
        let withSubprotocolList = setup != .flags
        defer { gateway.stop() }
        try await gateway.waitUntilListening()

        let paho = try await Peers.run(try Peers.python, [Peers.script("mqtt_roundtrip.py"), "\(gateway.port)", "/mqtt"], timeout: 60)
        #expect(paho.status == 0 && paho.output.contains("15 received, 0 lost, 0 corrupted"), "\(paho.output)")

        let node = try await Peers.run(try Peers.which("env"), ["NODE_PATH=/usr/share/nodejs", try Peers.which("node").path, Peers.script("ws_mqtt_connect.js"), "ws://127.0.0.1:\(gateway.port)/mqtt"])
        #expect(node.output.contains("PROTOCOL: mqtt CONNACK: 20020000"), "\(node.output)")

        let chromium = try await Peers.run(try Peers.python, [Peers.script("chromium_mqtt.py"), "http://localhost:\(gateway.port)", "/mqtt"], timeout: 90)
        #expect(chromium.output.contains("PROTOCOL: mqtt CONNACK: 20020000"), "\(chromium.output)")

        // With a list, a client speaking something else is turned away before the broker is dialled.
        let other = try await TestClient.connect(port: gateway.port, group: MultiThreadedEventLoopGroup.singleton)
        try await other.send(TestClient.handshake(path: "/mqtt", extra: ["Sec-WebSocket-Protocol: v12.stomp"]))
        let (status, headers) = try await other.readHead()
        await other.close()
        if withSubprotocolList {
            #expect(status == 400)
        } else {
            #expect(status == 101 && headers["sec-websocket-protocol"] == "v12.stomp")
        }

        // Every session ends (paho, node, Chromium, and the stomp client when it was let in) with a
        // code the client chose, and none is left in the broker's connection table.
        let sessions = withSubprotocolList ? 3 : 4
        try await eventually("\(sessions) session lines", timeout: .seconds(15)) {
            gateway.log.split(separator: "\n").filter { $0.contains("session ended") }.count == sessions
        }
    }
}
