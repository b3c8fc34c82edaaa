import Yams

/// One key of a configuration mapping, declared once beside its struct: its name, how its value is
/// read into the model, what else it requires, and how `wsgate check` shows it. Reading, the
/// unknown-key check, error paths and the printout all come from these declarations.
struct ConfigurationKey<Model> {
    let name: String
    /// Said when the key is missing; nil: the key is optional (the struct's default stays).
    var missing: String?
    let read: (inout Model, ConfigurationReader, Node, String) throws(ConfigurationError) -> Void
    /// `name=value` items for `wsgate check` (several for a nested section); empty: not shown.
    let show: (Model) -> [String]
    /// Checked once every key of the mapping is read: a message when the key may not be given.
    var conditions: [(Model) -> String?] = []

    /// A key whose value goes to `path`.
    static func value<Value>(_ name: String, _ path: WritableKeyPath<Model, Value>, _ value: ConfigurationValue<Value>, shown: Bool = true) -> Self {
        Self(name: name, read: { model, reader, node, key throws(ConfigurationError) in
            model[keyPath: path] = try value.read(reader, node, key)
        }, show: { model in shown ? ["\(name)=\(value.show(model[keyPath: path]))"] : [] })
    }

    /// A key whose value goes to an optional `path`; `unset` is shown while it is nil.
    static func optional<Value>(_ name: String, _ path: WritableKeyPath<Model, Value?>, _ value: ConfigurationValue<Value>, unset: String = "off", shown: Bool = true) -> Self {
        Self(name: name, read: { model, reader, node, key throws(ConfigurationError) in
            model[keyPath: path] = try value.read(reader, node, key)
        }, show: { model in shown ? ["\(name)=\(model[keyPath: path].map(value.show) ?? unset)"] : [] })
    }

    /// A nested mapping read into its own struct.
    static func section<Section: ConfigurationSection>(_ name: String, _ path: WritableKeyPath<Model, Section>, shown: Bool = true) -> Self {
        Self(name: name, read: { model, reader, node, key throws(ConfigurationError) in
            model[keyPath: path] = try reader.read(Section.self, node, key)
        }, show: { model in shown ? Section.describe(model[keyPath: path]).map { "\(name).\($0)" } : [] })
    }

    /// A nested mapping read into its own struct, which is absent unless given.
    static func section<Section: ConfigurationSection>(_ name: String, _ path: WritableKeyPath<Model, Section?>, shown: Bool = true) -> Self {
        Self(name: name, read: { model, reader, node, key throws(ConfigurationError) in
            model[keyPath: path] = try reader.read(Section.self, node, key)
        }, show: { model in
            guard shown else { return [] }
            return model[keyPath: path].map { Section.describe($0).map { "\(name).\($0)" } } ?? ["\(name)=off"]
        })
    }

    /// A nested mapping whose keys write into this same model (a route's `limits`, which sets both
    /// its limits and its pool's connect attempts).
    static func group(_ name: String, _ keys: [ConfigurationKey<Model>], shown: Bool = true) -> Self {
        Self(name: name, read: { model, reader, node, key throws(ConfigurationError) in
            try reader.readKeys(keys, node, key, into: &model)
        }, show: { model in shown ? Self.describe(model, keys).map { "\(name).\($0)" } : [] })
    }

    /// A key read by hand, for values spread over the model.
    static func custom(_ name: String, read: @escaping (inout Model, ConfigurationReader, Node, String) throws(ConfigurationError) -> Void,
                       show: @escaping (Model) -> [String] = { _ in [] }) -> Self {
        Self(name: name, read: read, show: show)
    }

    /// The key must be given; `message` says what it is for.
    func required(_ message: String = "missing") -> Self {
        var key = self
        key.missing = message
        return key
    }

    /// The key may only be given when `allowed` holds once the whole mapping is read.
    func only(when allowed: @escaping (Model) -> Bool, _ message: String) -> Self {
        var key = self
        key.conditions.append { allowed($0) ? nil : message }
        return key
    }
}

/// A struct read from a YAML mapping: its keys, and the checks that involve several of them.
protocol ConfigurationSection {
    /// Read in this order, so a key may rely on the ones before it.
    static var keys: [ConfigurationKey<Self>] { get }
    /// What reading starts from; required keys replace its placeholders.
    static var blank: Self { get }
    /// A scalar given instead of a mapping is the value of this key (`static: DIR` for
    /// `static: {root: DIR}`); nil: a mapping is required.
    static var shorthand: String? { get }
    /// Checks and derived values across keys, once all are read; `key` is the mapping's path.
    static func finish(_ model: inout Self, _ reader: ConfigurationReader, _ node: Node, _ key: String) throws(ConfigurationError)
    /// `name=value` items for `wsgate check`; by default every key that applies.
    static func describe(_ model: Self) -> [String]
}

extension ConfigurationSection {
    static var shorthand: String? { nil }
    static func finish(_ model: inout Self, _ reader: ConfigurationReader, _ node: Node, _ key: String) throws(ConfigurationError) {}

    /// `name=value` items for `wsgate check`.
    static func describe(_ model: Self) -> [String] {
        ConfigurationKey.describe(model, self.keys)
    }
}

extension ConfigurationKey {
    /// The shown items of the keys that apply to `model` (a key whose condition fails is left out).
    static func describe(_ model: Model, _ keys: [Self]) -> [String] {
        keys.filter { key in key.conditions.allSatisfy { $0(model) == nil } }.flatMap { $0.show(model) }
    }
}

extension ConfigurationReader {
    func read<Section: ConfigurationSection>(_ type: Section.Type, _ node: Node, _ key: String) throws(ConfigurationError) -> Section {
        var model = Section.blank
        let finish = { (model: inout Section) throws(ConfigurationError) in try Section.finish(&model, self, node, key) }
        if let main = Section.shorthand, case .scalar = node, let mainKey = Section.keys.first(where: { $0.name == main }) {
            // The scalar stands for the whole mapping: its errors are the mapping's.
            self.locations.nodes[Self.path(key, main)] = node
            try mainKey.read(&model, self, node, key)
            try finish(&model)
        } else {
            try self.readKeys(Section.keys, node, key, into: &model, finish: finish)
        }
        return model
    }

    /// Reads a mapping's keys into `model` in their declared order, runs `finish`, then checks
    /// the keys' conditions.
    func readKeys<Model>(_ keys: [ConfigurationKey<Model>], _ node: Node, _ key: String?, into model: inout Model,
                         finish: ((inout Model) throws(ConfigurationError) -> Void)? = nil) throws(ConfigurationError) {
        let entries = try self.mapping(node, key, allowed: keys.map(\.name))
        for declared in keys {
            let path = Self.path(key, declared.name)
            if let value = entries[declared.name] {
                try declared.read(&model, self, value, path)
            } else if let missing = declared.missing {
                throw self.fail(node, path, missing)
            }
        }
        try finish?(&model)
        for declared in keys {
            guard let value = entries[declared.name] else { continue }
            for condition in declared.conditions {
                if let message = condition(model) { throw self.fail(value, Self.path(key, declared.name), message) }
            }
        }
    }
}
