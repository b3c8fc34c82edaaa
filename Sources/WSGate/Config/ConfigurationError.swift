/// A configuration problem, located well enough to fix: file, line and column, and the key path.
public struct ConfigurationError: Error, Equatable, CustomStringConvertible {
    public var file: String?
    public var line: Int?
    public var column: Int?
    /// Dotted key path such as `routes[1].limits.idle_timeout`, or nil for the document itself.
    public var key: String?
    public var message: String

    public init(file: String? = nil, line: Int? = nil, column: Int? = nil, key: String? = nil, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.key = key
        self.message = message
    }

    public var description: String {
        var location = self.file ?? "<config>"
        if let line { location += ":\(line)" }
        if let column { location += ":\(column)" }
        if let key { return "\(location): \(key): \(self.message)" }
        return "\(location): \(self.message)"
    }
}
