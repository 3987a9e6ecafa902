import CCynicPlugin

/// The C type of a plugin parameter, as declared by `cynic_param.type`.
public enum ParameterType: UInt32, Sendable, CaseIterable, CustomStringConvertible {
    case bool = 1, int32, int64, uint32, uint64, double, string

    init?(_ raw: cynic_type) { self.init(rawValue: raw) }

    /// The C spelling, as a plugin author writes it in the configure function.
    public var cName: String {
        switch self {
        case .bool: "bool"
        case .int32: "int32_t"
        case .int64: "int64_t"
        case .uint32: "uint32_t"
        case .uint64: "uint64_t"
        case .double: "double"
        case .string: "const char *"
        }
    }

    /// What a user must write, for error messages.
    public var description: String {
        switch self {
        case .bool: "a boolean (true or false)"
        case .int32: "a 32-bit integer (\(Int32.min)...\(Int32.max))"
        case .int64: "a 64-bit integer"
        case .uint32: "an unsigned 32-bit integer (0...\(UInt32.max))"
        case .uint64: "an unsigned 64-bit integer (0...\(UInt64.max))"
        case .double: "a number"
        case .string: "a string"
        }
    }
}

/// A parameter value converted to its C type, ready to be passed to a configure function.
public enum ParameterValue: Sendable, Equatable, CustomStringConvertible {
    case bool(Bool)
    case int32(Int32)
    case int64(Int64)
    case uint32(UInt32)
    case uint64(UInt64)
    case double(Double)
    /// `nil` is the NULL a string parameter without a default receives.
    case string(String?)

    /// Converts `text`, as written in a configuration file, on the command line or as a
    /// descriptor's default, to `type`; `nil` when it does not fit.
    public init?(parsing text: String, as type: ParameterType) {
        let trimmed = type == .string ? text : text.trimmingWhitespace()
        switch type {
        case .bool:
            switch trimmed.lowercased() {
            case "true", "yes", "on", "1": self = .bool(true)
            case "false", "no", "off", "0": self = .bool(false)
            default: return nil
            }
        case .int32: guard let v = Int32(integerText: trimmed) else { return nil }; self = .int32(v)
        case .int64: guard let v = Int64(integerText: trimmed) else { return nil }; self = .int64(v)
        case .uint32: guard let v = UInt32(integerText: trimmed) else { return nil }; self = .uint32(v)
        case .uint64: guard let v = UInt64(integerText: trimmed) else { return nil }; self = .uint64(v)
        case .double:
            guard let v = Double(trimmed), v.isFinite else { return nil }
            self = .double(v)
        case .string:
            guard !text.utf8.contains(0) else { return nil }
            self = .string(text)
        }
    }

    public var description: String {
        switch self {
        case .bool(let v): "\(v)"
        case .int32(let v): "\(v)"
        case .int64(let v): "\(v)"
        case .uint32(let v): "\(v)"
        case .uint64(let v): "\(v)"
        case .double(let v): "\(v)"
        case .string(let v): v.map { "\"\($0)\"" } ?? "NULL"
        }
    }
}

extension FixedWidthInteger {
    /// Decimal, with `_` separators allowed as in TOML and Swift (`86_400_000`).
    init?(integerText text: String) {
        let digits = text.replacingOccurrences(of: "_", with: "")
        guard !digits.isEmpty, !text.hasPrefix("_"), !text.hasSuffix("_") else { return nil }
        self.init(digits, radix: 10)
    }
}

extension String {
    func trimmingWhitespace() -> String {
        let scalars = unicodeScalars
        guard let start = scalars.firstIndex(where: { !$0.properties.isWhitespace }) else { return "" }
        let end = scalars.lastIndex(where: { !$0.properties.isWhitespace })!
        return String(scalars[start...end])
    }

    func replacingOccurrences(of target: Character, with replacement: String) -> String {
        var result = ""
        for character in self { if character == target { result += replacement } else { result.append(character) } }
        return result
    }
}
