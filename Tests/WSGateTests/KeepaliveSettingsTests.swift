import NIOCore
import Testing
@testable import WSGate

@Suite struct KeepaliveSettingsTests {
    static func parse(_ server: String) throws -> KeepaliveSettings {
        try ConfigurationLoader.parse(yaml: "server: \(server)\nlisteners: [{address: ':0'}]\nroutes: [{path: /, backend: 'tcp://h:1'}]").server.keepalive
    }

    @Test func onByDefaultAndEachTimingGoesToItsOption() throws {
        let defaults = try Self.parse("{}")
        #expect(defaults.idle == .seconds(60) && defaults.interval == .seconds(10) && defaults.count == 6)
        let values = SocketKeepalive.options(try Self.parse("{keepalive: {idle: 2m, interval: 15s, count: 4}}")).map(\.1)
        #expect(values == [1, 120, 15, 4])
        #expect(SocketKeepalive.options(try Self.parse("{keepalive: {idle: off}}")).isEmpty)
    }

    @Test(arguments: ["{keepalive: {idle: 1500ms}}", "{keepalive: {interval: 0s}}", "{keepalive: {count: 0}}", "{keepalive: {idle: 40000s}}"])
    func badTimingsAreNamed(_ server: String) throws {
        let error = try #require(throws: ConfigurationError.self) { try Self.parse(server) }
        #expect(error.key?.hasPrefix("server.keepalive.") == true, "\(error)")
    }
}
