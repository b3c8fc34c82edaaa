/// websockify-style configuration from flags: `--listen ADDR` and `--route /path=URL`.
public enum CommandLineConfiguration {
    /// With `tls`, every `--listen` address is a TLS listener using those files (websockify's --cert/--key).
    public static func make(listen: [String], routes: [String], tls: ListenerTLS? = nil, origins: [String] = []) throws(ConfigurationError) -> GatewayConfiguration {
        var policy = OriginPolicy.sameOrigin
        if origins == ["any"] {
            policy = .any
        } else if !origins.isEmpty && origins != ["same-origin"] {
            for origin in origins where !(origin == "null" || ParsedOrigin(origin) != nil || origin.contains("*.")) {
                throw ConfigurationError(key: "--allow-origin", message: "'\(origin)' is not an origin (https://host[:port]), a *.domain pattern, any or same-origin")
            }
            policy = .allowList(origins)
        }
        let listeners = try self.listeners(listen, tls: tls)
        var table: [RouteConfiguration] = []
        for text in routes {
            guard let equals = text.firstIndex(of: "="), text.hasPrefix("/") else {
                throw ConfigurationError(key: "--route", message: "expected /PATH=BACKEND-URL, got '\(text)'")
            }
            let path = String(text[..<equals])
            do {
                let backend = try BackendURL(parsing: String(text[text.index(after: equals)...]))
                var route = RouteConfiguration(path: path, backend: backend)
                route.origins = policy
                table.append(route)
            } catch {
                throw ConfigurationError(key: "--route \(text)", message: error.description)
            }
        }
        if table.isEmpty { throw ConfigurationError(key: "--route", message: "at least one --route /PATH=BACKEND-URL is needed") }
        return GatewayConfiguration(listeners: listeners, routes: table)
    }

    /// `--listen` addresses (also used to replace a file's listeners).
    public static func listeners(_ listen: [String], tls: ListenerTLS? = nil) throws(ConfigurationError) -> [ListenerConfiguration] {
        var listeners: [ListenerConfiguration] = []
        for text in listen {
            guard let address = ListenAddress(parsing: text) else {
                throw ConfigurationError(key: "--listen", message: ListenAddress.invalid(text))
            }
            listeners.append(ListenerConfiguration(address: address, tls: tls))
        }
        if listeners.isEmpty { throw ConfigurationError(key: "--listen", message: "at least one --listen address is needed") }
        return listeners
    }
}
