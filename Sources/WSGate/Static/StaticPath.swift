/// A request path turned into the file segments under a static root, or the reason it never
/// can be one. Pure, so every traversal trick is unit-tested.
///
/// Refused: percent-encoding that is malformed or decodes to NUL, `/` or `\`; `.` and `..`
/// segments (in any encoding, since the check runs after decoding); hidden names (`.git`,
/// `.env`), which a deployed directory should not expose.
enum StaticPath {
    enum Refusal: Error, Equatable {
        /// 400: not a valid path.
        case malformed(String)
        /// 404: a valid path that is never served.
        case hidden
    }

    /// The segments of `path` below the route's `prefix` (the route path; `exact` routes serve
    /// the index of the root). An empty result is the root directory itself. `isDirectory` is
    /// whether the request named a directory (it ended with `/`).
    static func segments(of path: Substring, below prefix: String) -> Result<(segments: [String], isDirectory: Bool), Refusal> {
        var remainder = path.hasPrefix(prefix) ? path.dropFirst(prefix.count) : path
        if remainder.hasPrefix("/") { remainder = remainder.dropFirst() }
        var segments: [String] = []
        for raw in remainder.split(separator: "/", omittingEmptySubsequences: true) {
            guard let decoded = PercentEncoding.decode(raw, plusIsSpace: false) else { return .failure(.malformed("bad percent-encoding in '\(raw)'")) }
            if decoded == "." || decoded == ".." { return .failure(.malformed("'\(decoded)' segment")) }
            if decoded.contains("/") || decoded.contains("\\") || decoded.contains("\0") {
                return .failure(.malformed("encoded separator or NUL in '\(raw)'"))
            }
            if decoded.hasPrefix(".") { return .failure(.hidden) }
            segments.append(decoded)
        }
        // `/vnc` (the route's own path) names the root too, but without its `/`: it gets redirected.
        let isDirectory = path.hasSuffix("/")
        return .success((segments, isDirectory))
    }
}
