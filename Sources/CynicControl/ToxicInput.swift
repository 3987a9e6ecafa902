import CynicConfig
import CynicPlugins

/// A toxic in a request body (`POST /proxies/NAME/toxics`, and POST or PATCH of one toxic), read
/// as toxiproxy's Go server reads it: unknown fields ignored, a field of the wrong type "bad
/// request body".
///
/// Reading a body needs nothing of the server: the one thing it may need — the names of the
/// shapers loaded, for a `cynic.NAME` type — is handed to `shaper(existing:shaperNames:)`, so the
/// routes and the fuzz harness read bodies the same way.
struct ToxicInput {
    let name: String
    let type: String
    let stream: ShaperDirection
    let toxicity: Double
    /// toxiproxy's attributes, or a cynic shaper's parameters, as sent.
    let attributes: [String: JSONValue]

    /// A new toxic: `type` is required; `stream` is downstream and `name` TYPE_STREAM when absent,
    /// the toxicity 1.
    init(new body: JSONValue) throws(APIError) {
        let fields = try ProxyInput.fields(body)
        stream = try Self.stream(fields)
        guard let type = try ProxyInput.string(fields, "type"), !type.isEmpty else {
            throw APIError.badRequest("invalid toxic type", field: "type")
        }
        self.type = type
        name = try ProxyInput.string(fields, "name").flatMap { $0.isEmpty ? nil : $0 } ?? "\(type)_\(stream.rawValue)"
        if let problem = JSONFields.problem(withName: name) { throw APIError.badRequest("name: \(problem)", field: "name") }
        toxicity = try Self.toxicity(fields) ?? 1
        attributes = try Self.attributes(fields)
    }

    /// A change of the toxic `current`: its name, type and stream stay as they are, whatever the
    /// body says; so does its toxicity unless given.
    init(update body: JSONValue, of current: ShaperSpec) throws(APIError) {
        let fields = try ProxyInput.fields(body)
        name = current.name
        type = ToxicJSON(current).type
        stream = current.direction
        toxicity = try Self.toxicity(fields) ?? current.probability
        attributes = try Self.attributes(fields)
    }

    /// Whether `shaper` needs the names of the shapers loaded: the type is none of toxiproxy's.
    var needsShaperNames: Bool { ToxicType.named(type) == nil }

    /// The shaper the toxic is: toxiproxy's type mapped (`ToxicType`), or a cynic shaper named
    /// directly (`cynic.NAME`, one of `shaperNames`) with its own parameters. `existing` is the
    /// shaper an update starts from: the attributes given replace those values, the others stay.
    func shaper(existing: ShaperSpec?, shaperNames: [String]) throws(APIError) -> ShaperSpec {
        if let mapped = ToxicType.named(type) {
            var values = existing.map { mapped.attributes(of: $0) } ?? [:]
            for attribute in mapped.attributes {
                guard let value = attributes[attribute.name] else { continue }
                switch value {
                case .null: continue
                case .integer(let integer) where integer >= 0: values[attribute.name] = UInt64(integer)
                case .unsigned(let unsigned): values[attribute.name] = unsigned
                default:
                    throw APIError.badRequest("bad request body: attributes.\(attribute.name): expected a whole number of 0 or more, got \(value.kind == "a number" ? "\(value.parameterText ?? "")" : value.kind)",
                                              field: "attributes.\(attribute.name)")
                }
                // In cynic's unit the value must still be a number: a rate of 2^64 / 1000 KB/s
                // and more would wrap to a trickle.
                if let given = values[attribute.name], given.multipliedReportingOverflow(by: attribute.scale).overflow {
                    throw APIError.badRequest("bad request body: attributes.\(attribute.name): at most \(UInt64.max / attribute.scale), got \(given)",
                                              field: "attributes.\(attribute.name)")
                }
            }
            return mapped.shaper(name: name, stream: stream, toxicity: toxicity, attributes: values)
        }
        let shaper = type.hasPrefix(ToxicType.ownPrefix) ? String(type.dropFirst(ToxicType.ownPrefix.count)) : ""
        guard shaperNames.contains(shaper) else {
            let known = ToxicType.all.map(\.type) + shaperNames.map { ToxicType.ownPrefix + $0 }
            throw APIError.badRequest("invalid toxic type: '\(type)' (known: \(known.joined(separator: ", ")))", field: "type")
        }
        // A cynic shaper's own parameters, merged as PATCH merges a shaper's: null removes one.
        let changes: [String: ParameterInput?]
        do {
            changes = try ServiceRoutes.parameterChanges(JSONFields(.object(attributes), path: "attributes."))
        } catch {
            throw APIError.badRequest("bad request body: \(error.message)", field: error.field)
        }
        var parameters = existing?.parameters ?? [:]
        for (key, value) in changes { parameters[key] = value }
        return ShaperSpec(shaper: shaper, name: name, probability: toxicity, direction: stream, parameters: parameters)
    }

    private static func stream(_ fields: JSONFields) throws(APIError) -> ShaperDirection {
        guard let text = try ProxyInput.string(fields, "stream"), !text.isEmpty else { return .downstream }
        guard let direction = ShaperDirection(rawValue: text.lowercased()) else {
            throw APIError.badRequest("stream was invalid, can be either upstream or downstream", field: "stream")
        }
        return direction
    }

    private static func toxicity(_ fields: JSONFields) throws(APIError) -> Double? {
        do {
            return try fields.probability("toxicity")
        } catch {
            throw APIError.badRequest("bad request body: \(error.message)", field: "toxicity")
        }
    }

    private static func attributes(_ fields: JSONFields) throws(APIError) -> [String: JSONValue] {
        guard let value = fields.values["attributes"], value != .null else { return [:] }
        guard case .object(let attributes) = value else {
            throw APIError.badRequest("bad request body: attributes: expected an object, got \(value.kind)", field: "attributes")
        }
        return attributes
    }
}
