import Logging
import ServiceLifecycle
import UnixSignals

/// Runs the gateway under swift-service-lifecycle: listens until a shutdown signal, then drains.
/// While running, SIGHUP (and, with a watched file, a change to it or to a listener's
/// certificate) reloads the configuration; once the drain has begun, a second SIGTERM or SIGINT
/// cuts it short.
public struct GatewayService: Service {
    public let server: GatewayServer
    /// Loads the configuration again for a reload; nil: SIGHUP only re-reads certificates.
    let reloadSource: ReloadSource?

    /// Where a reload reads the configuration from.
    public struct ReloadSource: Sendable {
        /// The configuration file, watched for changes when `watchInterval` is set.
        public var file: String
        /// Loads (and validates) the configuration: the file plus whatever the command line overrides.
        public var load: @Sendable () throws -> GatewayConfiguration
        /// How often the file and the listeners' certificates are checked; nil: only on SIGHUP.
        public var watchInterval: Duration?

        public init(file: String, watchInterval: Duration?, load: @escaping @Sendable () throws -> GatewayConfiguration) {
            self.file = file
            self.watchInterval = watchInterval
            self.load = load
        }
    }

    public init(server: GatewayServer, reloadSource: ReloadSource? = nil) {
        self.server = server
        self.reloadSource = reloadSource
    }

    public func run() async throws {
        // Trapped before the listeners open: a SIGHUP sent as soon as the gateway answers is
        // queued for the reloader, not ignored (as SIGHUP is until trapped; see SignalMask).
        let sighups = await UnixSignalsSequence(trapping: .sighup)
        try await self.server.start()
        let reloader = ConfigurationReloader(server: self.server, source: self.reloadSource)
        let reloads = Task { await reloader.run(sighups: sighups) }
        try? await gracefulShutdown()
        reloads.cancel()
        await reloads.value  // a reload in flight finishes before the listeners close
        let server = self.server
        let cutter = Task {
            for await signal in await UnixSignalsSequence(trapping: .sigterm, .sigint) {
                server.gateway.logger.notice("\(signal) during the drain: cutting the remaining sessions")
                server.cut()
                return
            }
        }
        await server.shutdown()
        cutter.cancel()
    }
}
