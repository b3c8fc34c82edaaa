import Foundation
import NIOCore
import NIOHTTP1
import Testing
@testable import WSGate

@Suite struct StaticPathTests {
    func segments(_ path: String, below prefix: String = "/") -> Result<(segments: [String], isDirectory: Bool), StaticPath.Refusal> {
        StaticPath.segments(of: Substring(path), below: prefix)
    }

    @Test func plainPathsBecomeSegmentsBelowTheRoutePrefix() throws {
        #expect(try self.segments("/app.js").get().segments == ["app.js"])
        #expect(try self.segments("/vnc/core/rfb.js", below: "/vnc").get().segments == ["core", "rfb.js"])
        #expect(try self.segments("/vnc/", below: "/vnc").get() == ([], true))
        #expect(try self.segments("/vnc", below: "/vnc").get() == ([], false), "the route's own path without / is redirected")
        #expect(try self.segments("/a//b/", below: "/").get() == (["a", "b"], true))
        #expect(try self.segments("/caf%C3%A9%20menu.html").get().segments == ["café menu.html"])
        #expect(try self.segments("/%252e%252e/x").get().segments == ["%2e%2e", "x"], "decoded once: a literal name, not a traversal")
    }

    @Test func traversalInAnyEncodingIsRefused() {
        let attempts = ["/../etc/passwd", "/a/../../etc/passwd", "/%2e%2e/etc/passwd", "/%2E%2E/%2e%2E/etc/passwd", "/.%2e/x", "/%2e./x",
                        "/..%2fetc%2fpasswd", "/..%2Fetc", "/a%2f..%2f..%2fb", "/..%5c..%5cwindows", "/a%00.html", "/%c0%ae%c0%ae/etc/passwd",
                        "/%zz", "/%2", "/./x"]
        for path in attempts {
            switch self.segments(path) {
            case .failure(.malformed): break
            default: Issue.record("\(path) was not refused as malformed")
            }
        }
        for hidden in ["/.git/config", "/.env", "/a/.htpasswd", "/%2egit/HEAD"] {
            #expect(throws: StaticPath.Refusal.hidden) { try self.segments(hidden).get() }
        }
    }
}

@Suite struct StaticFileLookupTests {
    /// root/{index.html, app.js, docs/{readme.txt}, empty/, link-out -> ../secret.txt, link-in -> app.js, fifo}, ../secret.txt
    static func tree() throws -> (root: String, cleanup: () -> Void) {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("wsgate-static-\(UUID().uuidString.prefix(8))")
        let root = base.appendingPathComponent("web")
        try FileManager.default.createDirectory(at: root.appendingPathComponent("docs"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: root.appendingPathComponent("empty"), withIntermediateDirectories: true)
        try "<h1>hi</h1>".write(to: root.appendingPathComponent("index.html"), atomically: true, encoding: .utf8)
        try "console.log(1)".write(to: root.appendingPathComponent("app.js"), atomically: true, encoding: .utf8)
        try "read me".write(to: root.appendingPathComponent("docs/readme.txt"), atomically: true, encoding: .utf8)
        try "secret".write(to: base.appendingPathComponent("secret.txt"), atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: root.appendingPathComponent("link-out").path, withDestinationPath: "../secret.txt")
        try FileManager.default.createSymbolicLink(atPath: root.appendingPathComponent("link-in").path, withDestinationPath: "app.js")
        mkfifo(root.appendingPathComponent("fifo").path, 0o644)
        let real = StaticFileLookup.resolve(root.path, within: "/")!
        return (real, { try? FileManager.default.removeItem(at: base) })
    }

    static func ask(_ root: String, _ path: String, listing: Bool = false, ifNoneMatch: String? = nil, ifModifiedSince: String? = nil) -> StaticAnswer {
        var settings = StaticSettings(root: root)
        settings.listing = listing
        let (segments, isDirectory) = try! StaticPath.segments(of: Substring(path), below: "/").get()
        let answer = StaticFileLookup.answer(.init(settings: settings, segments: segments, isDirectory: isDirectory, path: path, ifNoneMatch: ifNoneMatch, ifModifiedSince: ifModifiedSince))
        if case .file(let handle, _, _) = answer { try? handle.close() }
        return answer
    }

    static func header(_ answer: StaticAnswer, _ name: String) -> String? {
        switch answer {
        case .file(_, _, let headers), .notModified(let headers): return headers.first { $0.0 == name }?.1
        default: return nil
        }
    }

    @Test func filesIndexesRedirectsAndTypes() throws {
        let (root, cleanup) = try Self.tree()
        defer { cleanup() }
        guard case .file(_, 11, _) = Self.ask(root, "/") else { Issue.record("/ is not the index"); return }
        #expect(Self.header(Self.ask(root, "/"), "Content-Type") == "text/html; charset=utf-8")
        #expect(Self.header(Self.ask(root, "/app.js"), "Content-Type") == "text/javascript; charset=utf-8")
        #expect(Self.header(Self.ask(root, "/docs/readme.txt"), "X-Content-Type-Options") == "nosniff")
        guard case .redirect("/docs/") = Self.ask(root, "/docs") else { Issue.record("no redirect to /docs/"); return }
        #expect(Self.ask(root, "/docs/").status == .notFound, "no index and no listing")
        #expect(Self.ask(root, "/app.js/").status == .notFound, "a file is not a directory")
        #expect(Self.ask(root, "/missing.js").status == .notFound)
        #expect(ContentType.forFile("x.WASM") == "application/wasm")
        #expect(ContentType.forFile("noextension") == "application/octet-stream")
    }

    @Test func symlinksMustStayInsideTheRootAndOnlyRegularFilesAreServed() throws {
        let (root, cleanup) = try Self.tree()
        defer { cleanup() }
        #expect(Self.ask(root, "/link-out").status == .notFound)
        #expect(Self.ask(root, "/link-in").status == .ok)
        #expect(Self.ask(root, "/fifo").status == .notFound, "a FIFO is neither opened for long nor served")
    }

    @Test func conditionalRequestsGet304() throws {
        let (root, cleanup) = try Self.tree()
        defer { cleanup() }
        let first = Self.ask(root, "/app.js")
        let etag = try #require(Self.header(first, "ETag"))
        let lastModified = try #require(Self.header(first, "Last-Modified"))
        #expect(lastModified.hasSuffix(" GMT") && lastModified.count == 29, "\(lastModified)")
        #expect(Self.ask(root, "/app.js", ifNoneMatch: etag).status == .notModified)
        #expect(Self.ask(root, "/app.js", ifNoneMatch: "\"other\", W/\(etag)").status == .notModified)
        #expect(Self.ask(root, "/app.js", ifNoneMatch: "*").status == .notModified)
        #expect(Self.ask(root, "/app.js", ifNoneMatch: "\"other\"").status == .ok)
        #expect(Self.ask(root, "/app.js", ifModifiedSince: lastModified).status == .notModified)
        #expect(Self.ask(root, "/app.js", ifNoneMatch: "\"other\"", ifModifiedSince: lastModified).status == .ok, "If-None-Match decides")
        #expect(Self.header(Self.ask(root, "/app.js", ifNoneMatch: etag), "ETag") == etag)
        // A changed file has a new tag.
        try "console.log(2); // longer".write(toFile: root + "/app.js", atomically: false, encoding: .utf8)
        #expect(Self.ask(root, "/app.js", ifNoneMatch: etag).status == .ok)
    }

    @Test func listingsAreOptInEscapedAndHideDotfiles() throws {
        let (root, cleanup) = try Self.tree()
        defer { cleanup() }
        try "x".write(toFile: root + "/docs/.hidden", atomically: true, encoding: .utf8)
        try "x".write(toFile: root + "/docs/<b>&.txt", atomically: true, encoding: .utf8)
        guard case .page(.ok, _, let body) = Self.ask(root, "/docs/", listing: true) else { Issue.record("no listing"); return }
        #expect(body.contains("<a href=\"readme.txt\">readme.txt</a>"))
        #expect(body.contains("<a href=\"%3Cb%3E%26.txt\">&lt;b&gt;&amp;.txt</a>"))
        #expect(!body.contains("hidden"))
        #expect(HTTPDate.format(secondsSince1970: 784111777) == "Sun, 06 Nov 1994 08:49:37 GMT")
    }
}

@Suite struct StaticConfigurationTests {
    @Test func rootsResolveAgainstTheFileAndBadOnesAreRefused() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("wsgate-static-config-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("web"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("gw.yaml").path
        try "# not read: the loader is given the text".write(toFile: file, atomically: true, encoding: .utf8)
        let real = StaticFileLookup.resolve(directory.path, within: "/")!
        let config = try ConfigurationLoader.parse(yaml: """
            listeners: [{address: ":8080"}]
            routes:
              - {path: /, static: web}
              - {path: /vnc, backend: "tcp://127.0.0.1:5900", static: {root: ./web, index: vnc.html, listing: on, cache_control: "max-age=60"}}
            """, file: file)
        #expect(config.routes[0].staticFiles?.root == real + "/web")
        #expect(config.routes[0].servesWebSockets == false)
        #expect(config.routes[1].servesWebSockets)
        #expect(config.routes[1].staticFiles?.index == "vnc.html")
        #expect(config.routes[1].staticFiles?.listing == true)
        #expect(config.routes[1].staticFiles?.cacheControl == "max-age=60")

        for (yaml, message) in [
            ("{path: /, static: missing}", "cannot open directory"),
            ("{path: /, static: gw.yaml}", "is not a directory"),
            ("{path: /, static: {root: web, index: ../x}}", "expected a file name"),
            ("{path: /, static: web, backend: \"tcp://h:1\", auth: {bearer_tokens_env: T}}", "served without credentials"),
        ] {
            #expect(throws: ConfigurationError.self, "\(yaml)") {
                do {
                    _ = try ConfigurationLoader.parse(yaml: "listeners: [{address: \":8080\"}]\nroutes:\n  - \(yaml)\n", file: file)
                } catch {
                    #expect("\(error)".contains(message), "\(yaml): \(error)")
                    throw error
                }
            }
        }
    }
}

@Suite struct RecordConfigurationTests {
    @Test func recordingDirectoriesAndLimits() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("wsgate-rec-config-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("rec"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("gw.yaml").path
        func parse(_ route: String) throws -> RouteConfiguration {
            try ConfigurationLoader.parse(yaml: "listeners: [{address: \":8080\"}]\nroutes:\n  - \(route)\n", file: file).routes[0]
        }
        let short = try parse("{path: /, backend: \"tcp://h:1\", record: rec}")
        #expect(short.record?.directory == directory.appendingPathComponent("rec").standardizedFileURL.path)
        #expect(short.record?.maxFileBytes == 16 * 1024 * 1024)
        let long = try parse("{path: /, backend: \"tcp://h:1\", record: {directory: ./rec, max_file_bytes: 1MiB, max_total_bytes: 10MiB, max_files: 5}}")
        #expect(long.record?.maxFileBytes == 1024 * 1024 && long.record?.maxTotalBytes == 10 * 1024 * 1024 && long.record?.maxFiles == 5)
        for (route, message) in [
            ("{path: /, backend: \"tcp://h:1\", record: missing}", "is not a directory"),
            ("{path: /, backend: \"tcp://h:1\", record: {directory: rec, max_file_bytes: 1KiB}}", "at least 4KiB"),
            ("{path: /, backend: \"tcp://h:1\", record: {directory: rec, max_file_bytes: 2MiB, max_total_bytes: 1MiB}}", "at least max_file_bytes"),
            ("{path: /, static: rec, record: rec}", "no sessions to record"),
        ] {
            do {
                _ = try parse(route)
                Issue.record("accepted: \(route)")
            } catch {
                #expect("\(error)".contains(message), "\(route): \(error)")
            }
        }
    }
}
