import CynicConfig
import CynicPlugins
import CynicRuntime

/// A service as the API answers it (docs/control-api.md).
struct ServiceJSON: Encodable {
    struct Connections: Encodable {
        let open: Int
        let accepted: Int
    }

    let name: String
    let behaviour: String
    let listen: String
    let parameters: [String: String]
    let shapers: [ShaperJSON]
    let enabled: Bool
    let listening: Bool
    let seed: UInt64?
    let origin: String
    let version: String?
    let connections: Connections

    init(_ status: ServiceStatus) {
        name = status.spec.name
        behaviour = status.spec.behaviour
        listen = status.boundAddress.description
        parameters = status.spec.parameters.mapValues(\.text)
        shapers = status.spec.shapers.map(ShaperJSON.init)
        enabled = status.enabled
        listening = status.listening
        seed = status.spec.seed
        origin = status.spec.origin
        version = status.behaviourVersion
        connections = Connections(open: status.openConnections, accepted: status.acceptedConnections)
    }

    private enum CodingKeys: String, CodingKey {
        case name, behaviour, listen, parameters, shapers, enabled, listening, seed, origin, version, connections
    }

    // Written out so that `seed` and `version` appear as null rather than missing.
    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(name, forKey: .name)
        try container.encode(behaviour, forKey: .behaviour)
        try container.encode(listen, forKey: .listen)
        try container.encode(parameters, forKey: .parameters)
        try container.encode(shapers, forKey: .shapers)
        try container.encode(enabled, forKey: .enabled)
        try container.encode(listening, forKey: .listening)
        try container.encode(seed, forKey: .seed)
        try container.encode(origin, forKey: .origin)
        try container.encode(version, forKey: .version)
        try container.encode(connections, forKey: .connections)
    }
}

struct ShaperJSON: Encodable {
    let name: String
    let shaper: String
    let direction: String
    let probability: Double
    let parameters: [String: String]

    init(_ spec: ShaperSpec) {
        name = spec.name
        shaper = spec.shaper
        direction = spec.direction.rawValue
        probability = spec.probability
        parameters = spec.parameters.mapValues(\.text)
    }
}

/// Reading services and shapers from request bodies: each field checked, each error naming it.
enum ServiceInput {
    static let serviceFields = ["name", "behaviour", "listen", "parameters", "shapers", "enabled", "seed"]
    static let changeFields = ["behaviour", "listen", "parameters", "shapers", "enabled", "seed"]
    static let shaperFields = ["shaper", "name", "direction", "probability", "parameters"]
    static let shaperChangeFields = ["direction", "probability", "parameters"]

    /// A new service from POST /services.
    static func service(_ body: JSONValue) throws(APIError) -> (spec: ServiceSpec, enabled: Bool) {
        let fields = try JSONFields(body)
        try fields.allowOnly(serviceFields)
        guard let name = try fields.name("name") else { throw fields.invalid("name", "required") }
        let behaviour = try fields.requiredString("behaviour")
        let spec = ServiceSpec(name: name, behaviour: behaviour, address: try address(fields, "listen") ?? defaultAddress,
                               parameters: try parameters(fields.object("parameters")),
                               shapers: try shapers(fields), seed: try fields.unsigned("seed", nullable: true) ?? nil,
                               origin: "api")
        return (spec, try fields.bool("enabled") ?? true)
    }

    static let defaultAddress = ServiceAddress.tcp(host: ServiceSpec.defaultHost, port: 0)

    static func address(_ fields: JSONFields, _ key: String) throws(APIError) -> ServiceAddress? {
        guard let text = try fields.string(key) else { return nil }
        switch ServiceAddress.parse(text) {
        case .success(let address): return address
        case .failure(let error): throw fields.invalid(key, error.description)
        }
    }

    /// A parameter object: each value a string, number or boolean, kept as text with the field
    /// as its origin (so a value the plugin refuses is named in the error).
    static func parameters(_ fields: JSONFields?) throws(APIError) -> [String: ParameterInput] {
        guard let fields else { return [:] }
        var parameters: [String: ParameterInput] = [:]
        for (key, value) in fields.values {
            guard let text = value.parameterText else {
                throw fields.invalid(key, "expected a string, number or boolean, got \(value.kind)")
            }
            parameters[key] = ParameterInput(text, origin: fields.path + key)
        }
        return parameters
    }

    static func shapers(_ fields: JSONFields) throws(APIError) -> [ShaperSpec] {
        guard let items = try fields.array("shapers") else { return [] }
        var shapers: [ShaperSpec] = []
        for (index, item) in items.enumerated() {
            let shaper = try shaper(item, path: "\(fields.path)shapers[\(index)].")
            if shapers.contains(where: { $0.name == shaper.name }) {
                throw APIError(.conflict, "shapers[\(index)].name: '\(shaper.name)' is given twice; name one of them", field: "shapers[\(index)].name")
            }
            shapers.append(shaper)
        }
        return shapers
    }

    /// A shaper from a service's list or from POST .../shapers; `path` prefixes its fields.
    static func shaper(_ body: JSONValue, path: String = "") throws(APIError) -> ShaperSpec {
        let fields = try JSONFields(body, path: path)
        try fields.allowOnly(shaperFields)
        let shaper = try fields.requiredString("shaper")
        return ShaperSpec(shaper: shaper, name: try fields.name("name"), probability: try fields.probability("probability") ?? 1,
                          direction: try direction(fields, "direction") ?? .downstream,
                          parameters: try parameters(fields.object("parameters")))
    }

    static func direction(_ fields: JSONFields, _ key: String) throws(APIError) -> ShaperDirection? {
        guard let text = try fields.string(key) else { return nil }
        guard let direction = ShaperDirection(rawValue: text) else {
            throw fields.invalid(key, "expected \(ShaperDirection.allCases.map(\.rawValue).joined(separator: " or ")), got '\(text)'")
        }
        return direction
    }
}
