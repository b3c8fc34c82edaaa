import NIOConcurrencyHelpers
import Logging
import NIOCore

/// What every connection needs to know about the gateway: the routing table, the server settings,
/// how to reach backends, and where to log.
public struct GatewayContext: Sendable {
    public var settings: ServerSettings
    public var connector: BackendConnector
    public var logger: Logger
    let sessions = SessionRegistry()
    /// Sessions held for a resume or shared, by route and id.
    let hubs = HubTable()
    /// Shared by every routing table version, so a reload keeps the bcrypt concurrency bound.
    let passwordChecks = PasswordChecks()
    /// Pool targets and their health checks, kept across reloads.
    let targets = TargetRegistry()
    /// Sessions per user and per target, kept across reloads.
    let quotas = SessionQuotas()
    private let currentRouting = NIOLockedValueBox(Routing.empty)
    /// Listening and not draining: what `/readyz` reports.
    let readiness = NIOLockedValueBox(false)
    let clients: ClientLimiter

    public init(configuration: GatewayConfiguration, logger: Logger) {
        self.settings = configuration.server
        self.connector = BackendConnector(logger: logger, drains: TargetDrains())
        self.logger = logger
        self.clients = ClientLimiter(limits: configuration.server.limits, fileDescriptorLimit: FileDescriptorLimit.current)
    }

    /// The routing table new handshakes use; live sessions keep the route they started with.
    var routing: Routing {
        get { self.currentRouting.withLockedValue { $0 } }
        nonmutating set { self.currentRouting.withLockedValue { $0 = newValue } }
    }
}
