import NIOCore

/// What a reload did, for the caller's log line and for tests.
public enum ReloadOutcome: Sendable, Equatable {
    /// The new routing table is in force; listeners were opened and closed to match the file.
    case applied(routes: Int, listenersOpened: Int, listenersClosed: Int, listenerFailures: Int)
    /// The new configuration failed to load; the old one stays.
    case rejected(String)
}

extension GatewayServer {
    /// Replaces the routing table and the listeners with `new`'s, without touching live sessions:
    /// they keep the route they started with. Everything the routes name is loaded first, so a
    /// table that fails (a missing token file, a bad CA) is refused whole and the old one stays.
    /// Listeners no longer in the file are closed, new ones opened (one that cannot bind is
    /// logged and retried by the next reload). `server` and `admin` settings apply at the next
    /// start. TLS listeners that stay re-read their certificates, and the routes' key and CA
    /// files are read again even when the table itself is unchanged.
    @discardableResult
    public func reload(_ new: GatewayConfiguration) async -> ReloadOutcome {
        let logger = self.gateway.logger
        let old = self.configuration
        guard self.gateway.readiness.withLockedValue({ $0 }) else {
            logger.warning("configuration reload ignored: the gateway is not running")
            return .rejected("not running")
        }
        if new.server != old.server || new.admin != old.admin {
            logger.warning("configuration reload: 'server', 'limits' and 'admin' changes take effect at the next start")
        }
        // Rebuilt even when the routes are unchanged: that re-reads the files they name (a rotated
        // JWT key, a new backend CA).
        let routing: Routing
        do {
            routing = try await Routing.make(new.routes, logger: logger, passwordChecks: self.gateway.passwordChecks, targets: self.gateway.targets)
        } catch {
            logger.error("configuration reload refused, keeping the current configuration: \(error)")
            return .rejected("\(error)")
        }

        // Listeners: close the ones that went away (or changed) first, so a changed listener can
        // bind its address again.
        let (kept, closing) = self.listeners.withLockedValue { listeners -> ([OpenListener], [OpenListener]) in
            let kept = listeners.filter { new.listeners.contains($0.configuration) }
            let closing = listeners.filter { !new.listeners.contains($0.configuration) }
            listeners = kept
            return (kept, closing)
        }
        for listener in closing {
            try? await listener.channel.close()
            logger.info("stopped listening (removed from the configuration)", metadata: ["address": "\(listener.configuration.address)"])
        }
        self.reloadCertificates()
        var opened = 0, failures = 0
        for listener in new.listeners where !kept.contains(where: { $0.configuration == listener }) {
            do {
                let open = try await self.open(listener)
                self.listeners.withLockedValue { $0.append(open) }
                opened += 1
            } catch {
                failures += 1
                logger.error("configuration reload: cannot listen on \(listener.address): \(error)")
            }
        }

        self.gateway.routing = routing
        self.gateway.targets.apply(routing, group: self.group, logger: logger)
        let listening = self.listeners.withLockedValue { open in new.listeners.filter { l in open.contains { $0.configuration == l } } }
        self.current.withLockedValue {
            $0.routes = new.routes
            $0.listeners = listening  // one that failed to bind differs from the file: the next reload retries it
        }
        logger.notice("configuration reloaded: \(new.routes.count) routes for new sessions (live sessions keep theirs), \(opened) listeners opened, \(closing.count) closed")
        self.logRoutes(routing)
        return .applied(routes: new.routes.count, listenersOpened: opened, listenersClosed: closing.count, listenerFailures: failures)
    }
}
