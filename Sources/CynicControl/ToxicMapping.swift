import CynicConfig
import CynicPlugins

/// toxiproxy's toxics as cynic's shapers, both ways: a toxic's type, attribute names and units
/// become a shaper and its parameters, and a shaper reads back as the toxic it came from.
///
/// toxiproxy's `stream` is the shaper's direction under the same names: `downstream` is what the
/// client receives, `upstream` what it sends toward the server; `toxicity` is the probability.
/// Every other shaper is the type `cynic.NAME`, its own parameters as attributes: toxiproxy's
/// clients can use every shaper cynic has, and a shaper reads back as exactly one type.
struct ToxicType: Sendable {
    struct Attribute: Sendable {
        /// toxiproxy's name.
        let name: String
        /// The shaper parameter it sets.
        let parameter: String
        /// parameter = attribute × scale (rate in KB/s → bytes per second).
        let scale: UInt64
    }

    let type: String
    let shaper: String
    /// Parameters the mapping always sets, and by which a shaper is recognised as this toxic.
    let fixed: [String: String]
    let attributes: [Attribute]

    static let all: [ToxicType] = [
        ToxicType(type: "latency", shaper: "latency", fixed: ["mode": "per-chunk"],
                  attributes: [.init(name: "latency", parameter: "ms", scale: 1), .init(name: "jitter", parameter: "jitter_ms", scale: 1)]),
        ToxicType(type: "bandwidth", shaper: "bandwidth", fixed: [:],
                  attributes: [.init(name: "rate", parameter: "bytes_per_second", scale: 1000)]),
        ToxicType(type: "slow_close", shaper: "slow-close", fixed: [:], attributes: [.init(name: "delay", parameter: "ms", scale: 1)]),
        ToxicType(type: "timeout", shaper: "timeout", fixed: [:], attributes: [.init(name: "timeout", parameter: "ms", scale: 1)]),
        ToxicType(type: "reset_peer", shaper: "reset-after", fixed: [:], attributes: [.init(name: "timeout", parameter: "ms", scale: 1)]),
        ToxicType(type: "slicer", shaper: "slicer", fixed: [:],
                  attributes: [.init(name: "average_size", parameter: "size", scale: 1),
                               .init(name: "size_variation", parameter: "variation", scale: 1),
                               .init(name: "delay", parameter: "delay_us", scale: 1)]),
        ToxicType(type: "limit_data", shaper: "limit", fixed: [:], attributes: [.init(name: "bytes", parameter: "bytes", scale: 1)]),
    ]

    static func named(_ type: String) -> ToxicType? { all.first { $0.type == type } }

    /// The shaper for a toxic of this type; `attributes` are toxiproxy's, missing ones 0 as in
    /// toxiproxy (a latency toxic without `jitter` has none).
    func shaper(name: String, stream: ShaperDirection, toxicity: Double,
                attributes: [String: UInt64]) -> ShaperSpec {
        var parameters = fixed.mapValues { ParameterInput($0, origin: "attributes") }
        for attribute in self.attributes {
            let value = attributes[attribute.name] ?? 0
            parameters[attribute.parameter] = ParameterInput(String(value.multipliedReportingOverflow(by: attribute.scale).partialValue),
                                                             origin: "attributes.\(attribute.name)")
        }
        return ShaperSpec(shaper: shaper, name: name, probability: toxicity, direction: stream, parameters: parameters)
    }

    /// The toxic type a shaper reads back as: the mapping whose shaper and fixed parameters it
    /// has and whose attributes say all its parameters; nil for a shaper no toxiproxy type
    /// describes (a first-byte latency, a slicer with delay_ms).
    static func of(_ spec: ShaperSpec) -> ToxicType? {
        all.first { type in
            type.shaper == spec.shaper && type.fixed.allSatisfy { spec.parameters[$0.key]?.text == $0.value }
                && spec.parameters.keys.allSatisfy { key in type.fixed[key] != nil || type.attributes.contains { $0.parameter == key } }
                && type.attributes.allSatisfy { attribute in
                    spec.parameters[attribute.parameter].map { UInt64($0.text).map { $0 % attribute.scale == 0 } ?? false } ?? true
                }
        }
    }

    /// The type of a shaper no toxiproxy type describes.
    static let ownPrefix = "cynic."

    /// The attributes of a shaper of this type, in toxiproxy's units.
    func attributes(of spec: ShaperSpec) -> [String: UInt64] {
        var values: [String: UInt64] = [:]
        for attribute in attributes {
            values[attribute.name] = (spec.parameters[attribute.parameter].flatMap { UInt64($0.text) } ?? 0) / attribute.scale
        }
        return values
    }
}

/// A toxic as toxiproxy answers it.
struct ToxicJSON: Encodable {
    let name: String
    let type: String
    let stream: String
    let toxicity: Double
    let attributes: [String: AttributeValue]

    /// An attribute: toxiproxy's are integers; a cynic shaper's parameters keep their type.
    enum AttributeValue: Encodable, Equatable {
        case integer(UInt64)
        case negative(Int64)
        case number(Double)
        case bool(Bool)
        case text(String)

        /// A parameter's text as JSON: a number or a boolean only when a client sending it back
        /// gives cynic the same text (`JSONValue.parameterText`), otherwise the text itself. "007",
        /// "1e3" or "1.00055555556e+19" would come back as 7, 1000 and 10005555555600000000 — to a
        /// plugin another value, or one it refuses — so they are shown as strings.
        init(parameterText text: String) {
            if let integer = UInt64(text), String(integer) == text {
                self = .integer(integer)
            } else if let integer = Int64(text), String(integer) == text {
                self = .negative(integer)
            } else if let number = Double(text), number.isFinite, number != number.rounded(), String(number) == text {
                // Not a whole number: JSON readers take one written with a fraction or an
                // exponent as an integer.
                self = .number(number)
            } else if text == "true" || text == "false" {
                self = .bool(text == "true")
            } else {
                self = .text(text)
            }
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            switch self {
            case .integer(let value): try container.encode(value)
            case .negative(let value): try container.encode(value)
            case .number(let value): try container.encode(value)
            case .bool(let value): try container.encode(value)
            case .text(let value): try container.encode(value)
            }
        }
    }

    init(_ spec: ShaperSpec) {
        name = spec.name
        stream = spec.direction.rawValue
        toxicity = spec.probability
        if let type = ToxicType.of(spec) {
            self.type = type.type
            attributes = type.attributes(of: spec).mapValues { .integer($0) }
        } else {
            type = ToxicType.ownPrefix + spec.shaper
            attributes = spec.parameters.mapValues { AttributeValue(parameterText: $0.text) }
        }
    }
}
