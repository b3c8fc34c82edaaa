/// websockify-style configuration from flags: `--listen ADDR` and `--route /path=URL`.
public enum CommandLineConfiguration {
    /// With `tls`, every `--listen` address is a TLS listener using those files (websockify's --cert/--key).
    public static func make(listen: [String], routes: [String], tls: ListenerTLS? = nil) throws(ConfigurationError) -> GatewayConfiguration {
        var listeners: [ListenerConfiguration] = []
        for text in listen {
            guard let address = ListenAddress(parsing: text) else {
                throw ConfigurationError(key: "--listen", message: "invalid address '\(text)' (use HOST:PORT, [IPV6]:PORT or :PORT)")
            }
            listeners.append(ListenerConfiguration(address: address, tls: tls))
        }
        if listeners.isEmpty { throw ConfigurationError(key: "--listen", message: "at least one --listen address is needed") }
        var table: [RouteConfiguration] = []
        for text in routes {
            guard let equals = text.firstIndex(of: "="), text.hasPrefix("/") else {
                throw ConfigurationError(key: "--route", message: "expected /PATH=BACKEND-URL, got '\(text)'")
            }
            let path = String(text[..<equals])
            do {
                let backend = try BackendURL(parsing: String(text[text.index(after: equals)...]))
                table.append(RouteConfiguration(path: path, backend: backend))
            } catch {
                throw ConfigurationError(key: "--route \(text)", message: error.description)
            }
        }
        if table.isEmpty { throw ConfigurationError(key: "--route", message: "at least one --route /PATH=BACKEND-URL is needed") }
        return GatewayConfiguration(listeners: listeners, routes: table)
    }
}
