import Foundation
import NIOCore
import Yams

/// Reads a YAML configuration file into a ``GatewayConfiguration``.
///
/// The YAML is composed into nodes rather than decoded with `Codable`, so that every error can name
/// the line and the key, and unknown keys (usually typos) are rejected instead of silently ignored.
/// The keys are declared beside their structs (``ConfigurationKey``); files named are checked once
/// the whole file has been read (``ConfigurationFiles``).
public enum ConfigurationLoader {
    public static func load(file path: String) throws(ConfigurationError) -> GatewayConfiguration {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigurationError(file: path, message: "cannot read file: \(error.localizedDescription)")
        }
        return try self.parse(yaml: text, file: path)
    }

    /// - Parameter environment: values for `${NAME}` references (see ``EnvironmentSubstitution``).
    public static func parse(yaml: String, file: String? = nil, environment: [String: String] = ProcessInfo.processInfo.environment) throws(ConfigurationError) -> GatewayConfiguration {
        let yaml = try EnvironmentSubstitution.apply(yaml, environment: environment, file: file)
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch let error as YamlError {
            throw Self.error(from: error, file: file)
        } catch {
            throw ConfigurationError(file: file, message: "invalid YAML: \(error)")
        }
        guard let root else { throw ConfigurationError(file: file, message: "the file is empty") }
        let reader = ConfigurationReader(file: file)
        var configuration = GatewayConfiguration.blank
        try reader.readKeys(GatewayConfiguration.keys, root, nil, into: &configuration)
        try ConfigurationFiles(reader: reader).check(&configuration)
        return configuration
    }

    private static func error(from error: YamlError, file: String?) -> ConfigurationError {
        switch error {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _):
            return ConfigurationError(file: file, line: mark.line, column: mark.column, message: "invalid YAML: \(problem)")
        default:
            return ConfigurationError(file: file, message: "invalid YAML: \(error)")
        }
    }
}
