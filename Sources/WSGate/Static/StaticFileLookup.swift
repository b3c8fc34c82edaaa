#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// What a static route answers, transport aside: HTTP/1.1 and HTTP/2 write it their own way.
enum StaticAnswer {
    /// 200: `byteCount` bytes of `handle` (the writer closes it).
    case file(handle: NIOFileHandle, byteCount: Int, headers: [(String, String)])
    /// 304 to a conditional request whose copy is current.
    case notModified(headers: [(String, String)])
    /// 301 to the directory's URL with its `/`, so the page's relative links resolve.
    case redirect(location: String)
    /// A generated page: a directory listing, or an error.
    case page(status: HTTPResponseStatus, contentType: String, body: String)

    var status: HTTPResponseStatus {
        switch self {
        case .file: return .ok
        case .notModified: return .notModified
        case .redirect: return .movedPermanently
        case .page(let status, _, _): return status
        }
    }
}

/// Finds and opens the file for a request, on a thread-pool thread (`realpath`, `stat` and `open`
/// block). Whatever the path says, the file must resolve, symlinks followed, inside the root.
enum StaticFileLookup {
    /// Listings stop here: a huge directory is not read whole into one page.
    static let maxListedEntries = 5000

    struct Request: Sendable {
        var settings: StaticSettings
        var segments: [String]
        var isDirectory: Bool
        /// The URL path as the client sent it (for the redirect and the listing's title).
        var path: String
        var ifNoneMatch: String?
        var ifModifiedSince: String?
    }

    /// The answer for a route's request, counted in `wsgate_static_responses_total`; never fails
    /// (a lookup that cannot run is logged and answered 500).
    static func answer(_ request: StaticRequest, eventLoop: EventLoop, logger: Logger) -> EventLoopFuture<StaticAnswer> {
        let route = request.route.configuration.path
        return NIOThreadPool.singleton.runIfActive(eventLoop: eventLoop) { Self.answer(request.lookup) }.recover { error in
            logger.error("static file lookup failed: \(error)", metadata: ["route": "\(route)"])
            return .page(status: .internalServerError, contentType: "text/plain; charset=utf-8", body: "Internal Server Error\n")
        }.map { answer in
            StaticFileMetrics.answered(route: route, status: answer.status)
            return answer
        }
    }

    static func answer(_ request: Request) -> StaticAnswer {
        let root = request.settings.root
        let candidate = ([root] + request.segments).joined(separator: "/")
        guard let real = self.resolve(candidate, within: root) else { return self.notFound }
        var info = stat()
        guard stat(real, &info) == 0 else { return self.notFound }
        if (info.st_mode & S_IFMT) == S_IFDIR {
            guard request.isDirectory else { return .redirect(location: request.path + "/") }
            if let index = request.settings.index, let file = self.resolve(real + "/" + index, within: root), let answer = self.openRegularFile(file, request) {
                return answer
            }
            return request.settings.listing ? self.listing(real, request) : self.notFound
        }
        guard !request.isDirectory else { return self.notFound }
        return self.openRegularFile(real, request) ?? self.notFound
    }

    static let notFound = StaticAnswer.page(status: .notFound, contentType: "text/plain; charset=utf-8", body: "Not Found\n")

    /// `path` with symlinks resolved, if it exists and stays inside `root` (itself resolved).
    static func resolve(_ path: String, within root: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        let real = String(cString: resolved)
        guard real == root || real.hasPrefix(root.hasSuffix("/") ? root : root + "/") else { return nil }
        return real
    }

    /// Opens a regular file (never blocking on a FIFO or a device) and builds its headers;
    /// nil when it is not one.
    private static func openRegularFile(_ path: String, _ request: Request) -> StaticAnswer? {
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            return nil
        }
        let size = Int(info.st_size)
        let modifiedNanoseconds = Int(info.st_mtim.tv_sec) * 1_000_000_000 + Int(info.st_mtim.tv_nsec)
        let etag = "\"\(String(size, radix: 16))-\(String(modifiedNanoseconds, radix: 16))\""
        let lastModified = HTTPDate.format(secondsSince1970: Int(info.st_mtim.tv_sec))
        let headers = [
            ("ETag", etag), ("Last-Modified", lastModified), ("Cache-Control", request.settings.cacheControl),
            ("Content-Type", ContentType.forFile(path)), ("X-Content-Type-Options", "nosniff"),
        ]
        // RFC 9110 §13.1.2/§13.1.3: If-None-Match decides when present; If-Modified-Since otherwise.
        let current: Bool
        if let ifNoneMatch = request.ifNoneMatch {
            current = self.matches(ifNoneMatch, etag: etag)
        } else {
            current = request.ifModifiedSince == lastModified
        }
        if current {
            close(fd)
            return .notModified(headers: headers.filter { $0.0 != "Content-Type" })
        }
        return .file(handle: NIOFileHandle(_deprecatedTakingOwnershipOfDescriptor: fd), byteCount: size, headers: headers)
    }

    /// Weak comparison over the list (`W/` ignored), `*` matching any current file.
    static func matches(_ ifNoneMatch: String, etag: String) -> Bool {
        ifNoneMatch.split(separator: ",").contains { tag in
            var tag = Substring(tag.trimmingWhitespace())
            if tag == "*" { return true }
            if tag.hasPrefix("W/") { tag = tag.dropFirst(2) }
            return tag == etag
        }
    }

    private static func listing(_ directory: String, _ request: Request) -> StaticAnswer {
        guard let handle = opendir(directory) else { return self.notFound }
        defer { closedir(handle) }
        var entries: [String] = []
        while entries.count < self.maxListedEntries, let entry = readdir(handle) {
            var name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard !name.hasPrefix(".") else { continue }
            if entry.pointee.d_type == UInt8(DT_DIR) { name += "/" }
            entries.append(name)
        }
        entries.sort()
        let title = HTMLEscaping.escape(request.path)
        var body = "<!doctype html>\n<meta charset=\"utf-8\">\n<title>Index of \(title)</title>\n<h1>Index of \(title)</h1>\n<ul>\n"
        for name in entries {
            body += "<li><a href=\"\(HTMLEscaping.escape(HTMLEscaping.percentEncoded(name)))\">\(HTMLEscaping.escape(name))</a></li>\n"
        }
        body += "</ul>\n"
        return .page(status: .ok, contentType: "text/html; charset=utf-8", body: body)
    }
}

enum HTMLEscaping {
    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(character)
            }
        }
        return out
    }

    /// A name as a relative URL path segment (a trailing `/` kept).
    static func percentEncoded(_ name: String) -> String {
        let unreserved = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~".utf8)
        var out = ""
        for (index, byte) in name.utf8.enumerated() {
            if unreserved.contains(byte) || (byte == UInt8(ascii: "/") && index == name.utf8.count - 1) {
                out.append(Character(UnicodeScalar(byte)))
            } else {
                out += "%" + (byte < 16 ? "0" : "") + String(byte, radix: 16, uppercase: true)
            }
        }
        return out
    }
}
