import Logging
import UnixSignals

/// Reloads the configuration on SIGHUP and, when watching, after the configuration file or a TLS
/// listener's certificate or key changes. Changes are debounced: a reload starts once the files
/// have stayed the same for one watch interval, so an editor's or `kubectl`'s multi-step write
/// is read once, whole. Reloads run one at a time.
struct ConfigurationReloader: Sendable {
    let server: GatewayServer
    let source: GatewayService.ReloadSource?

    /// Until cancelled; `sighups` is trapped by the caller before the gateway starts listening.
    func run(sighups: UnixSignalsSequence) async {
        let (triggers, trigger) = AsyncStream.makeStream(of: String.self, bufferingPolicy: .bufferingNewest(1))
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await _ in sighups {
                    trigger.yield("SIGHUP")
                }
            }
            if let interval = self.source?.watchInterval {
                group.addTask { await self.watch(every: interval, trigger: trigger) }
            }
            group.addTask {
                for await reason in triggers {
                    await self.reload(because: reason)
                }
            }
            await group.waitForAll()
        }
    }

    private func reload(because reason: String) async {
        let logger = self.server.gateway.logger
        guard let source = self.source else {
            logger.info("\(reason): re-reading TLS certificates (the configuration came from the command line)")
            self.server.reloadCertificates()
            return
        }
        logger.info("\(reason): reloading the configuration", metadata: ["file": "\(source.file)"])
        let configuration: GatewayConfiguration
        do {
            configuration = try source.load()
        } catch {
            logger.error("configuration reload refused, keeping the current configuration: \(error)", metadata: ["file": "\(source.file)"])
            return
        }
        await self.server.reload(configuration)
    }

    /// The files a reload depends on: the configuration and the listeners' PEM files.
    private func watchedFiles() -> [String] {
        guard let source = self.source else { return [] }
        return [source.file] + self.server.configuration.listeners.compactMap(\.tls).flatMap(\.files)
    }

    private func watch(every interval: Duration, trigger: AsyncStream<String>.Continuation) async {
        var files = self.watchedFiles()
        var seen = files.map(FileStamp.init)
        var changed = false
        while (try? await Task.sleep(for: interval)) != nil {
            let now = files.map(FileStamp.init)
            if now != seen {
                seen = now
                changed = true  // wait for the files to settle
            } else if changed {
                changed = false
                trigger.yield("file change")
                files = self.watchedFiles()
                seen = files.map(FileStamp.init)
            }
        }
    }
}
