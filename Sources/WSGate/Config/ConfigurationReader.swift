import Foundation
import Yams

/// Reads YAML nodes into values, locating every error by line, column and key path.
///
/// It knows no configuration key: those are declared beside their structs (``ConfigurationKey``).
/// It does no file I/O either, except to make relative paths absolute: files are checked in a
/// pass after the whole file has been read (``ConfigurationFiles``).
struct ConfigurationReader {
    let file: String?
    /// Every key read, by path (`routes[0].static.root`), so later checks can point at its line.
    let locations = NodeLocations()

    final class NodeLocations {
        var nodes: [String: Node] = [:]
    }

    func fail(_ node: Node?, _ key: String?, _ message: String) -> ConfigurationError {
        ConfigurationError(file: self.file, line: node?.mark?.line, column: node?.mark?.column, key: key, message: message)
    }

    /// An error at a key read earlier (or at `fallback` when it was not given).
    func fail(at key: String, or fallback: Node? = nil, _ message: String) -> ConfigurationError {
        self.fail(self.locations.nodes[key] ?? fallback, key, message)
    }

    /// The entries of a mapping, with unknown and repeated keys rejected.
    func mapping(_ node: Node, _ key: String?, allowed: [String]) throws(ConfigurationError) -> [String: Node] {
        guard case .mapping(let mapping) = node else { throw self.fail(node, key, "expected a mapping of keys to values") }
        var entries: [String: Node] = [:]
        for (keyNode, value) in mapping {
            guard let name = keyNode.string else { throw self.fail(keyNode, key, "keys must be strings") }
            let path = Self.path(key, name)
            guard allowed.contains(name) else {
                throw self.fail(keyNode, path, "unknown key (expected one of: \(allowed.joined(separator: ", ")))")
            }
            guard entries[name] == nil else { throw self.fail(keyNode, path, "key given twice") }
            entries[name] = value
            self.locations.nodes[path] = value
        }
        return entries
    }

    func sequence(_ node: Node, _ key: String) throws(ConfigurationError) -> [Node] {
        guard case .sequence(let sequence) = node else { throw self.fail(node, key, "expected a list") }
        for (index, item) in sequence.enumerated() { self.locations.nodes["\(key)[\(index)]"] = item }
        return Array(sequence)
    }

    func string(_ node: Node, _ key: String) throws(ConfigurationError) -> String {
        guard case .scalar(let scalar) = node else { throw self.fail(node, key, "expected a string") }
        return scalar.string
    }

    /// A relative path from the file is taken from the file's directory (from the working
    /// directory for text without a file).
    func relativeToFile(_ path: String) -> String {
        guard !path.hasPrefix("/") else { return path }
        let base = self.file.map { URL(fileURLWithPath: $0).deletingLastPathComponent().path } ?? FileManager.default.currentDirectoryPath
        return base + "/" + path
    }

    static func path(_ parent: String?, _ name: String) -> String {
        parent.map { "\($0).\(name)" } ?? name
    }
}
