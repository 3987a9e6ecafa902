import Foundation

/// A JSON value as a request sent it, read before its meaning: the API checks each field itself,
/// so an error names the field and what it expected, and a `null` or a number where a string
/// belongs is refused instead of coerced.
enum JSONValue: Sendable, Equatable, Decodable {
    case null
    case bool(Bool)
    case integer(Int64)
    /// An integer beyond Int64 (a 64-bit seed).
    case unsigned(UInt64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        // Bool first: JSONDecoder never reads a number as a Bool, nor a Bool as a number.
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .integer(value)
        } else if let value = try? container.decode(UInt64.self) {
            self = .unsigned(value)
        } else if let value = try? container.decode(Double.self) {
            self = .double(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    /// Parses a request body; `what` names it in the error ("request body").
    static func parse(_ bytes: [UInt8]) throws(APIError) -> JSONValue {
        guard !bytes.isEmpty else { throw APIError.badRequest("the request has no body: expected JSON") }
        do {
            return try JSONDecoder().decode(JSONValue.self, from: Data(bytes))
        } catch {
            throw APIError.badRequest("the request body is not valid JSON")
        }
    }

    /// "a string", "null", ...: what an error says was given.
    var kind: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .integer, .unsigned, .double: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }

    /// A scalar as the text a plugin parameter takes: "200", "0.5", "true", "per-chunk".
    var parameterText: String? {
        switch self {
        case .string(let text): text
        case .bool(let value): value ? "true" : "false"
        case .integer(let value): String(value)
        case .unsigned(let value): String(value)
        case .double(let value): value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
        case .null, .array, .object: nil
        }
    }
}

/// The fields of a JSON object in a request, read one at a time with errors that name them.
/// `path` prefixes every field name ("shapers[0].") so a nested error says where it is.
struct JSONFields {
    let values: [String: JSONValue]
    let path: String

    init(_ value: JSONValue, path: String = "", what: String = "the request body") throws(APIError) {
        guard case .object(let values) = value else {
            throw APIError.badRequest("\(path.isEmpty ? what : String(path.dropLast())): expected an object, got \(value.kind)",
                                      field: path.isEmpty ? nil : String(path.dropLast()))
        }
        self.values = values
        self.path = path
    }

    func has(_ key: String) -> Bool { values[key] != nil }

    /// Refuses any field not in `allowed`: a misspelt field must not be silently ignored.
    func allowOnly(_ allowed: [String]) throws(APIError) {
        for key in values.keys.sorted() where !allowed.contains(key) {
            throw invalid(key, "unknown field (known: \(allowed.joined(separator: ", ")))")
        }
    }

    func invalid(_ key: String, _ reason: String) -> APIError {
        APIError.badRequest("\(path)\(key): \(reason)", field: path + key)
    }

    func string(_ key: String) throws(APIError) -> String? {
        guard let value = values[key] else { return nil }
        guard case .string(let text) = value else { throw invalid(key, "expected a string, got \(value.kind)") }
        return text
    }

    func requiredString(_ key: String) throws(APIError) -> String {
        guard let text = try string(key) else { throw invalid(key, "required") }
        return text
    }

    func bool(_ key: String) throws(APIError) -> Bool? {
        guard let value = values[key] else { return nil }
        guard case .bool(let flag) = value else { throw invalid(key, "expected true or false, got \(value.kind)") }
        return flag
    }

    /// A probability: a number from 0 to 1.
    func probability(_ key: String) throws(APIError) -> Double? {
        guard let value = values[key] else { return nil }
        let number: Double
        switch value {
        case .integer(let integer): number = Double(integer)
        case .double(let double): number = double
        default: throw invalid(key, "expected a number from 0 to 1, got \(value.kind)")
        }
        guard (0...1).contains(number) else { throw invalid(key, "expected a number from 0 to 1, got \(number)") }
        return number
    }

    /// An unsigned 64-bit integer, or null when `nullable` (the outer optional: whether given).
    func unsigned(_ key: String, nullable: Bool = false) throws(APIError) -> UInt64?? {
        guard let value = values[key] else { return nil }
        switch value {
        case .integer(let integer) where integer >= 0: return .some(UInt64(integer))
        case .unsigned(let unsigned): return .some(unsigned)
        case .null where nullable: return .some(nil)
        default: throw invalid(key, "expected an unsigned integer\(nullable ? " or null" : ""), got \(value.kind)")
        }
    }

    func object(_ key: String) throws(APIError) -> JSONFields? {
        guard let value = values[key] else { return nil }
        return try JSONFields(value, path: "\(path)\(key).")
    }

    func array(_ key: String) throws(APIError) -> [JSONValue]? {
        guard let value = values[key] else { return nil }
        guard case .array(let items) = value else { throw invalid(key, "expected an array, got \(value.kind)") }
        return items
    }

    /// An array of strings.
    func strings(_ key: String) throws(APIError) -> [String]? {
        guard let items = try array(key) else { return nil }
        var strings: [String] = []
        for (index, item) in items.enumerated() {
            guard case .string(let text) = item else {
                throw APIError.badRequest("\(path)\(key)[\(index)]: expected a string, got \(item.kind)", field: "\(path)\(key)[\(index)]")
            }
            strings.append(text)
        }
        return strings
    }

    /// A name that can stand in a URL path: 1 to 128 characters, no '/', no control characters.
    /// Characters are counted as the OpenAPI document's `maxLength` counts them: Unicode scalars.
    func name(_ key: String) throws(APIError) -> String? {
        guard let name = try string(key) else { return nil }
        if let problem = Self.problem(withName: name) { throw invalid(key, problem) }
        return name
    }

    static func problem(withName name: String) -> String? {
        if name.isEmpty { return "must not be empty" }
        if name.unicodeScalars.count > 128 { return "at most 128 characters" }
        if name.contains("/") || name.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) {
            return "must not contain '/' or control characters"
        }
        return nil
    }
}
