/// Risky but valid combinations, printed by `wsgate check` and logged at start.
public enum SecurityWarnings {
    public static func warnings(for route: RouteConfiguration) -> [String] {
        var warnings: [String] = []
        let reachesService: Bool
        if case .webSocket = route.backend { reachesService = route.targets != nil } else { reachesService = true }
        if route.origins == .any && reachesService {
            if let cookie = route.auth?.sources.cookie {
                warnings.append("origins: any with a cookie credential (\(cookie)): any web page a logged-in user visits can open this route (cross-site WebSocket hijacking)")
            } else if route.auth == nil && route.targets == nil {
                warnings.append("origins: any and no auth: any web page can reach this TCP service through a visitor's browser")
            }
        }
        if case .allowList(let list) = route.origins, list.contains("null") {
            warnings.append("origins allows 'null': sandboxed iframes and local files of any site send it")
        }
        return warnings
    }

    /// An admin listener anyone on the network can use to list and end sessions.
    public static func warnings(for admin: AdminConfiguration) -> [String] {
        let host = admin.address.host
        let loopback = host == "localhost" || host == "::1" || host.hasPrefix("127.")
        guard !loopback, admin.tokenFile == nil else { return [] }
        return ["admin listens on \(admin.address) without token_file: anyone who reaches it can list and end sessions"]
    }
}
