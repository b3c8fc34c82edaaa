import ArgumentParser
import Foundation
import WSGate

/// `wsgate websockify [options] [source_addr:]source_port [target_addr:target_port]`: websockify's
/// command line, run as wsgate (see ``WebsockifyCommandLine``).
struct Websockify: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run with websockify's command line: [options] [source_addr:]source_port [target_addr:target_port].",
        discussion: """
            Takes websockify's --web, --cert, --key, --ssl-only, --record, --idle-timeout, --heartbeat, --unix-target, \
            --token-plugin TokenFile|ReadOnlyTokenFile|JWTTokenApi, --token-source, --target-config, --host-token and -v; \
            refuses its other options by name. wsgate's own: --allow HOST:PORTS (repeatable: what token targets may reach; \
            default: the targets the token source names at start), --unix-directory DIR (where unix_socket: targets may be), \
            --print-config (print the equivalent configuration file and exit).
            """
    )

    @Argument(parsing: .allUnrecognized, help: "websockify's options and addresses.")
    var arguments: [String] = []

    func run() async throws {
        let translation: WebsockifyCommandLine.Translation
        do {
            translation = try WebsockifyCommandLine.translate(self.arguments)
        } catch {
            printError("wsgate websockify: \(error)")
            throw ExitCode(2)
        }
        if translation.printsConfiguration {
            print(translation.yaml, terminator: "")
            return
        }
        for note in translation.notes { printError("wsgate websockify: note: \(note)") }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("wsgate-websockify-\(getpid()).yaml")
        try translation.yaml.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let run = try Run.parse(["--config", file.path] + (translation.verbose ? ["--log-level", "debug"] : []))
        try await run.run()
    }
}
