import CFuzzerDriver
import Foundation
@_spi(Fuzzing) import WSGate

/// `wsgate-fuzz TARGET [libFuzzer options] [CORPUS...]`
///
/// Built by scripts/fuzz.sh with libFuzzer and AddressSanitizer, it fuzzes TARGET. Built plainly
/// (as `swift build` does), it replays the given files or directories through TARGET once each:
/// how `make test` keeps every past crash and the seed corpus passing.
@main
enum FuzzCommand {
    nonisolated(unsafe) static var target = ""

    static func main() {
        var arguments = CommandLine.arguments
        guard arguments.count >= 2, FuzzTargets.names.contains(arguments[1]) else {
            FileHandle.standardError.write(Data("usage: wsgate-fuzz \(FuzzTargets.names.joined(separator: "|")) [libFuzzer options] [CORPUS...]\n".utf8))
            exit(2)
        }
        self.target = arguments.remove(at: 1)
        var argc = Int32(arguments.count)
        var cStrings: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        let status = cStrings.withUnsafeMutableBufferPointer { buffer -> Int32 in
            var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = buffer.baseAddress
            return wsgate_run_fuzzer(&argc, &argv) { data, size in
                FuzzTargets.run(FuzzCommand.target, UnsafeRawBufferPointer(start: data, count: size))
                return 0
            }
        }
        if status != -1 { exit(status) }
        exit(self.replay(Array(arguments.dropFirst())))
    }

    /// Without libFuzzer: every file given (directories: every file in them) runs once.
    static func replay(_ paths: [String]) -> Int32 {
        var files: [String] = []
        for path in paths where !path.hasPrefix("-") {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                FileHandle.standardError.write(Data("wsgate-fuzz: no such file \(path)\n".utf8))
                return 2
            }
            if isDirectory.boolValue {
                let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
                files += names.sorted().map { "\(path)/\($0)" }
            } else {
                files.append(path)
            }
        }
        for file in files {
            guard let data = FileManager.default.contents(atPath: file) else { continue }
            data.withUnsafeBytes { FuzzTargets.run(self.target, $0) }
        }
        print("wsgate-fuzz \(self.target): replayed \(files.count) inputs, no crash")
        return 0
    }
}
