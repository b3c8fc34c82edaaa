import Foundation
import Logging
import NIOConcurrencyHelpers
import Testing
@testable import WSGate

@Suite struct EnvironmentSubstitutionTests {
    let environment = ["BACKEND": "tcp://127.0.0.1:5900", "EMPTY": "", "PORT": "8080"]

    func apply(_ text: String) throws -> String {
        try EnvironmentSubstitution.apply(text, environment: self.environment, file: "test.yaml")
    }

    @Test func replacesReferencesAndDefaults() throws {
        #expect(try self.apply("backend: ${BACKEND}") == "backend: tcp://127.0.0.1:5900")
        #expect(try self.apply("address: \":${PORT}\"") == "address: \":8080\"")
        #expect(try self.apply("a: ${MISSING:-fallback}") == "a: fallback")
        #expect(try self.apply("a: ${EMPTY:-fallback}") == "a: fallback", "an empty value takes the default, as in sh")
        #expect(try self.apply("a: '${EMPTY}'") == "a: ''")
        #expect(try self.apply("a: $${BACKEND} $HOME $") == "a: ${BACKEND} $HOME $")
        #expect(try self.apply("a: 1 # ${MISSING} in a comment\n# ${ALSO_MISSING}") == "a: 1 # ${MISSING} in a comment\n# ${ALSO_MISSING}")
        #expect(try self.apply("a: \"x # ${PORT}\"") == "a: \"x # 8080\"", "a # inside quotes is not a comment")
        #expect(try self.apply("no references") == "no references")
    }

    @Test func anUnsetVariableIsAnErrorNamingTheLine() {
        #expect(throws: ConfigurationError(file: "test.yaml", line: 2, message: "environment variable MISSING is not set (use ${MISSING:-default} for a default)")) {
            try self.apply("a: 1\nb: ${MISSING}")
        }
        #expect(throws: ConfigurationError.self) { try self.apply("a: ${NOT VALID}") }
        #expect(throws: ConfigurationError.self) { try self.apply("a: ${}") }
    }

    @Test func theLoaderSubstitutesBeforeParsing() throws {
        let yaml = """
            listeners: [{address: "127.0.0.1:${PORT}"}]
            routes: [{path: /vnc, backend: "${BACKEND}"}]
            server: {drain_timeout: ${DRAIN:-3s}}
            """
        let configuration = try ConfigurationLoader.parse(yaml: yaml, environment: self.environment)
        #expect(configuration.listeners[0].address.port == 8080)
        #expect(configuration.routes[0].backend == .tcp(host: "127.0.0.1", port: 5900))
        #expect(configuration.server.drainTimeout == .seconds(3))
        #expect(try ConfigurationLoader.parse(yaml: "listeners: [{address: \":1\"}]\nroutes: [{path: /a, backend: \"tcp://h:1\"}]").server.drainTimeout == .seconds(10))
    }
}

@Suite struct JSONLogHandlerTests {
    @Test func writesOneParseableObjectPerLine() throws {
        let lines = NIOLockedValueBox<[String]>([])
        var logger = Logger(label: "wsgate") { label in JSONLogHandler(label: label) { line in lines.withLockedValue { $0.append(line) } } }
        logger[metadataKey: "instance"] = "a"
        logger.info("session \"ended\"\n\tbadly \u{1}", metadata: ["route": "/vnc", "bytes": "\(12)", "nested": ["k": "v"], "list": ["x", "y"], "message": "shadowed"])
        logger.debug("not at info")
        let written = lines.withLockedValue { $0 }
        #expect(written.count == 1)
        let line = try #require(written.first)
        #expect(line.hasSuffix("}\n") && line.filter { $0 == "\n" }.count == 1)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["message"] as? String == "session \"ended\"\n\tbadly \u{1}")
        #expect(object["level"] as? String == "info")
        #expect(object["logger"] as? String == "wsgate")
        #expect(object["route"] as? String == "/vnc")
        #expect(object["bytes"] as? String == "12")
        #expect(object["instance"] as? String == "a")
        #expect(object["nested"] as? [String: String] == ["k": "v"])
        #expect(object["list"] as? [String] == ["x", "y"])
        let time = try #require(object["time"] as? String)
        #expect(time.hasSuffix("Z") && time.contains("T") && time.contains("."), "\(time)")
        #expect(try Date(time, strategy: .iso8601.year().month().day().time(includingFractionalSeconds: true)).timeIntervalSinceNow > -60)
    }
}

@Suite struct OperationsConfigurationTests {
    @Test func reusePortAndDrainTimeoutParse() throws {
        let configuration = try ConfigurationLoader.parse(yaml: """
            server: {drain_timeout: 45s}
            listeners: [{address: ":8080", reuse_port: true}, {address: ":8081"}]
            routes: [{path: /a, backend: "tcp://h:1"}]
            """, environment: [:])
        #expect(configuration.listeners.map(\.reusePort) == [true, false])
        #expect(configuration.listeners[0].description == "0.0.0.0:8080 (reuse_port)")
        #expect(configuration.server.drainTimeout == .seconds(45))
        #expect(throws: ConfigurationError.self) {
            try ConfigurationLoader.parse(yaml: "server: {drain_timeout: 0s}\nlisteners: [{address: \":1\"}]\nroutes: [{path: /a, backend: \"tcp://h:1\"}]", environment: [:])
        }
        #expect(throws: ConfigurationError.self) {
            try ConfigurationLoader.parse(yaml: "listeners: [{address: \":1\", reuse_port: maybe}]\nroutes: [{path: /a, backend: \"tcp://h:1\"}]", environment: [:])
        }
    }

    /// The container image's default file and the Kubernetes ConfigMap's are what users start from.
    @Test func shippedContainerConfigurationLoads() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let configuration = try ConfigurationLoader.load(file: root.appendingPathComponent("examples/container.yaml").path)
        #expect(configuration.listeners.map(\.address.port) == [8080], "the HEALTHCHECK and EXPOSE use 8080")
    }
}

@Suite struct FileStampTests {
    /// The kubelet's ConfigMap and Secret layout: `name -> ..data/name`, `..data -> ..<timestamp>`,
    /// updated by renaming a new `..data` link into place. The file's own path never changes.
    @Test func seesAConfigMapStyleSymlinkSwap() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("wsgate-stamp-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: directory) }
        let fm = FileManager.default
        for (version, text) in [("..v1", "routes: a\n"), ("..v2", "routes: b\n")] {
            try fm.createDirectory(at: directory.appendingPathComponent(version), withIntermediateDirectories: true)
            try text.write(to: directory.appendingPathComponent(version).appendingPathComponent("wsgate.yaml"), atomically: true, encoding: .utf8)
        }
        try fm.createSymbolicLink(atPath: directory.appendingPathComponent("..data").path, withDestinationPath: "..v1")
        try fm.createSymbolicLink(atPath: directory.appendingPathComponent("wsgate.yaml").path, withDestinationPath: "..data/wsgate.yaml")
        let path = directory.appendingPathComponent("wsgate.yaml").path
        let before = try #require(FileStamp(path))
        #expect(FileStamp(path) == before)

        try fm.createSymbolicLink(atPath: directory.appendingPathComponent("..data_tmp").path, withDestinationPath: "..v2")
        #expect(rename(directory.appendingPathComponent("..data_tmp").path, directory.appendingPathComponent("..data").path) == 0)
        #expect(FileStamp(path) != before, "the link's target changed: same size, different file")
        #expect(FileStamp(directory.appendingPathComponent("missing").path) == nil)
    }
}

@Suite struct CloseCodeLabelTests {
    /// Clients choose close codes: the metric keeps RFC 6455's and folds the rest into a few series.
    @Test(arguments: [(1000, "1000"), (1005, "1005"), (1006, "1006"), (1015, "1015"), (3000, "3xxx"), (3999, "3xxx"),
                      (4001, "4xxx"), (4999, "4xxx"), (1016, "other"), (2999, "other"), (5000, "other"), (65535, "other")] as [(UInt16, String)])
    func closeCodesFoldIntoAClosedSetOfLabels(code: UInt16, label: String) {
        #expect(SessionMetrics.codeLabel(code) == label)
    }
}
