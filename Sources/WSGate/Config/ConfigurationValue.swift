import NIOCore
import Yams

/// How a kind of value is read from a YAML node (with the error a bad one gets) and shown by
/// `wsgate check`.
struct ConfigurationValue<Value> {
    let read: (ConfigurationReader, Node, String) throws(ConfigurationError) -> Value
    let show: (Value) -> String

    /// Text parsed by `parse`; `invalid` says what a refused text should have been.
    static func parsed(_ parse: @escaping (String) -> Value?, invalid: @escaping (String) -> String, show: @escaping (Value) -> String) -> Self {
        Self(read: { reader, node, key throws(ConfigurationError) in
            let text = try reader.string(node, key)
            guard let value = parse(text) else { throw reader.fail(node, key, invalid(text)) }
            return value
        }, show: show)
    }

    /// This value, refused with `message` unless `valid` holds.
    func checked(_ message: String, _ valid: @escaping (Value) -> Bool) -> Self {
        let read = self.read
        return Self(read: { reader, node, key throws(ConfigurationError) in
            let value = try read(reader, node, key)
            guard valid(value) else { throw reader.fail(node, key, message) }
            return value
        }, show: self.show)
    }

    /// A list of these, each item's errors at `key[index]`.
    static func list<Element>(_ element: ConfigurationValue<Element>, nonEmpty: String? = nil, separator: String = ",") -> Self where Value == [Element] {
        Self(read: { reader, node, key throws(ConfigurationError) in
            var items: [Element] = []
            for (index, item) in try reader.sequence(node, key).enumerated() {
                items.append(try element.read(reader, item, "\(key)[\(index)]"))
            }
            if let nonEmpty, items.isEmpty { throw reader.fail(node, key, nonEmpty) }
            return items
        }, show: { $0.isEmpty ? "none" : $0.map(element.show).joined(separator: separator) })
    }
}

extension ConfigurationValue where Value: ConfigurationSection {
    /// A mapping read into its own struct (as an item of a list).
    static var section: Self {
        Self(read: { reader, node, key throws(ConfigurationError) in try reader.read(Value.self, node, key) },
             show: { Value.describe($0).joined(separator: " ") })
    }
}

extension ConfigurationValue where Value == String {
    static var string: Self { Self(read: { reader, node, key throws(ConfigurationError) in try reader.string(node, key) }, show: { $0 }) }

    /// A path, relative ones taken from the configuration file's directory; whether it can be
    /// read is checked after the whole file (``ConfigurationFiles``).
    static var path: Self {
        Self(read: { reader, node, key throws(ConfigurationError) in reader.relativeToFile(try reader.string(node, key)) }, show: { $0 })
    }
}

extension ConfigurationValue where Value == Bool {
    static var bool: Self {
        .parsed({ text in
            switch text.lowercased() {
            case "true", "yes", "on": return true
            case "false", "no", "off": return false
            default: return nil
            }
        }, invalid: { "expected true/false (or on/off), got '\($0)'" }, show: { $0 ? "on" : "off" })
    }
}

extension ConfigurationValue where Value == Int {
    static func integer(in range: ClosedRange<Int>) -> Self {
        .parsed({ Int($0).flatMap { range.contains($0) ? $0 : nil } },
                invalid: { "expected a whole number from \(range.lowerBound) to \(range.upperBound), got '\($0)'" }, show: { "\($0)" })
    }

    /// A byte count (`65536`, `64KiB`, `16MiB`); positive unless `zero` is allowed.
    static func size(allowingZero zero: Bool = false) -> Self {
        .parsed({ text in
            if zero, text == "0" { return 0 }
            return ValueParsing.size(text).flatMap { $0 > 0 ? $0 : nil }
        }, invalid: { "invalid size '\($0)' (a positive number of bytes, or e.g. 64KiB, 16MiB)" }, show: Self.showSize)
    }

    static func showSize(_ bytes: Int) -> String {
        for (unit, factor) in [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] where bytes >= factor && bytes % factor == 0 {
            return "\(bytes / factor)\(unit)"
        }
        return "\(bytes)"
    }
}

extension ConfigurationValue where Value == UInt32 {
    /// A size-like number within `range` (plain or with a KiB/MiB suffix).
    static func count(in range: ClosedRange<Int>) -> Self {
        let size = ConfigurationValue<Int>.size()
        return Self(read: { reader, node, key throws(ConfigurationError) in
            let value = try size.read(reader, node, key)
            guard range.contains(value) else { throw reader.fail(node, key, "must be from \(range.lowerBound) to \(range.upperBound)") }
            return UInt32(value)
        }, show: { ConfigurationValue<Int>.showSize(Int($0)) })
    }
}

extension ConfigurationValue where Value == TimeAmount {
    static var duration: Self {
        .parsed(ValueParsing.duration, invalid: { "invalid duration '\($0)' (use e.g. 500ms, 30s, 5m, 1h)" }, show: { $0.prettyDescription })
    }

    static var positiveDuration: Self { .duration.checked("must be greater than zero") { $0 > .zero } }
}

extension ConfigurationValue where Value == TimeAmount? {
    /// A duration where `off` or 0 turns the feature off.
    static var durationOrOff: Self {
        .parsed({ text in
            if text == "off" { return .some(nil) }
            return ValueParsing.duration(text).map { $0 == .zero ? nil : $0 }
        }, invalid: { "invalid duration '\($0)' (use e.g. 500ms, 30s, 5m, 1h, or off)" }, show: { $0?.prettyDescription ?? "off" })
    }
}

extension ConfigurationValue where Value: RawRepresentable, Value.RawValue == String {
    /// One of the enum's raw values; `expected` lists them for the error.
    static func choice(_ expected: String) -> Self {
        .parsed(Value.init(rawValue:), invalid: { "expected \(expected), got '\($0)'" }, show: \.rawValue)
    }
}

extension ConfigurationValue where Value == [IPNetwork] {
    /// A list of CIDRs or addresses.
    static var networks: Self {
        .list(.parsed(IPNetwork.init(parsing:), invalid: { "'\($0)' is not an IP address or CIDR (10.0.0.0/8, fd00::/8)" }, show: { "\($0)" }))
    }
}

extension ConfigurationValue where Value == ListenAddress {
    static var address: Self { .parsed(ListenAddress.init(parsing:), invalid: ListenAddress.invalid, show: \.description) }
}
