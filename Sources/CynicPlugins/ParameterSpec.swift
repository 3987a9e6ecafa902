import CCynicPlugin

/// One parameter a behaviour declares: `cynic_param`, read once at load time.
public struct ParameterSpec: Sendable, Equatable {
    public let name: String
    public let type: ParameterType
    /// The descriptor's default, as text; `nil` when none was given.
    public let defaultText: String?
    /// The default converted; `nil` for a required parameter. A string parameter without a
    /// default is optional and receives NULL: its default is `.string(nil)`.
    public let defaultValue: ParameterValue?
    public let doc: String

    public var isRequired: Bool { defaultValue == nil }

    public init(name: String, type: ParameterType, defaultText: String?, doc: String) throws(PluginError) {
        self.name = name
        self.type = type
        self.defaultText = defaultText
        self.doc = doc
        if let defaultText {
            guard let value = ParameterValue(parsing: defaultText, as: type) else {
                throw .invalidDescriptor("parameter '\(name)': default '\(defaultText)' is not \(type)")
            }
            defaultValue = value
        } else {
            defaultValue = type == .string ? .string(nil) : nil
        }
    }
}

/// A value for a parameter as a user gave it, with where it came from for error messages
/// ("cynic.yaml:14", "--param interval_ms=...").
public struct ParameterInput: Sendable, Equatable {
    public let text: String
    public let origin: String

    public init(_ text: String, origin: String) {
        self.text = text
        self.origin = origin
    }
}

extension Array where Element == ParameterSpec {
    /// The values to pass to configure, in declaration order: each given input converted to its
    /// parameter's type, defaults for the rest. Every problem is reported before any call.
    public func resolve(_ inputs: [String: ParameterInput], behaviour: String) throws(ParameterError) -> [ParameterValue] {
        for (name, input) in inputs.sorted(by: { $0.key < $1.key }) where !contains(where: { $0.name == name }) {
            let known = isEmpty ? "it takes none" : "known: " + map(\.name).joined(separator: ", ")
            throw ParameterError(origin: input.origin,
                                 message: "unknown parameter '\(name)' for behaviour '\(behaviour)' (\(known))")
        }
        return try map { spec throws(ParameterError) in
            if let input = inputs[spec.name] {
                guard let value = ParameterValue(parsing: input.text, as: spec.type) else {
                    throw ParameterError(origin: input.origin,
                                         message: "parameter '\(spec.name)' of '\(behaviour)' expects \(spec.type), got '\(input.text)'")
                }
                return value
            }
            guard let value = spec.defaultValue else {
                throw ParameterError(origin: nil,
                                     message: "parameter '\(spec.name)' of '\(behaviour)' is required (\(spec.type))")
            }
            return value
        }
    }
}

/// A parameter value that cannot be used, found before the plugin is called.
public struct ParameterError: Error, Sendable, Equatable, CustomStringConvertible {
    public let origin: String?
    public let message: String

    public init(origin: String?, message: String) {
        self.origin = origin
        self.message = message
    }

    public var description: String { origin.map { "\($0): \(message)" } ?? message }
}
