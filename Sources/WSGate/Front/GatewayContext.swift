import NIOConcurrencyHelpers
import Logging
import NIOCore

/// What every connection needs to know about the gateway: the routing table, the server settings,
/// how to reach backends, and where to log.
public struct GatewayContext: Sendable {
    public var routes: RouteTable
    public var settings: ServerSettings
    public var connector: BackendConnector
    public var logger: Logger
    let sessions = SessionRegistry()
    let backendTLS = BackendTLSContexts()
    let guards = RouteGuards()
    /// Listening and not draining: what `/readyz` reports.
    let readiness = NIOLockedValueBox(false)
    let clients: ClientLimiter

    public init(configuration: GatewayConfiguration, logger: Logger) {
        self.routes = RouteTable(configuration.routes)
        self.settings = configuration.server
        self.connector = BackendConnector(tlsContexts: self.backendTLS)
        self.logger = logger
        self.clients = ClientLimiter(limits: configuration.server.limits, fileDescriptorLimit: FileDescriptorLimit.current)
    }
}
