/// Effective settings as `name=value` items, from the same key declarations the file is read
/// with, for `wsgate check`.
public enum ConfigurationSummary {
    public static func server(_ settings: ServerSettings) -> [String] {
        ServerSettings.describe(settings)
    }

    public static func limits(_ limits: ConnectionLimits) -> [String] {
        ConnectionLimits.describe(limits)
    }

    /// A route's settings beyond its match and targets (``RouteConfiguration/backendSummary``).
    public static func route(_ route: RouteConfiguration) -> [String] {
        var items: [String] = []
        if route.servesWebSockets {
            items += RouteConfiguration.describe(route)
        }
        if let files = route.staticFiles {
            items += StaticSettings.describe(files).filter { !$0.hasPrefix("root=") }.map { "static.\($0)" }
        }
        return items
    }
}
