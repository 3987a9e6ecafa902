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
    let tls: TLSJSON?
    /// Its own bound on connections; null: cynic's `--max-connections`.
    let maxConnections: Int?
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
        tls = status.spec.tls.map(TLSJSON.init)
        maxConnections = status.spec.maxConnections
        origin = status.spec.origin
        version = status.behaviourVersion
        connections = Connections(open: status.openConnections, accepted: status.acceptedConnections)
    }

    private enum CodingKeys: String, CodingKey {
        case name, behaviour, listen, parameters, shapers, enabled, listening, seed, tls, origin, version, connections
        case maxConnections = "max_connections"
    }

    // Written out so that `seed`, `tls` and `version` appear as null rather than missing.
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
        try container.encode(tls, forKey: .tls)
        try container.encode(maxConnections, forKey: .maxConnections)
        try container.encode(origin, forKey: .origin)
        try container.encode(version, forKey: .version)
        try container.encode(connections, forKey: .connections)
    }
}

/// A service's TLS as the API answers it: every field, null where unset.
struct TLSJSON: Encodable {
    let spec: TLSSpec

    private enum CodingKeys: String, CodingKey {
        case profile, certificate, key, alpn, minVersion = "min_version", maxVersion = "max_version", names
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(spec.certificateFile == nil ? spec.profile : nil, forKey: .profile)
        try container.encode(spec.certificateFile, forKey: .certificate)
        try container.encode(spec.keyFile, forKey: .key)
        try container.encode(spec.alpn, forKey: .alpn)
        try container.encode(spec.minimumVersion?.rawValue, forKey: .minVersion)
        try container.encode(spec.maximumVersion?.rawValue, forKey: .maxVersion)
        try container.encode(spec.names, forKey: .names)
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
    static let serviceFields = ["name", "behaviour", "listen", "parameters", "shapers", "enabled", "seed", "tls", "max_connections"]
    static let changeFields = ["behaviour", "listen", "parameters", "shapers", "enabled", "seed", "tls", "max_connections"]
    static let tlsFields = ["profile", "certificate", "key", "alpn", "min_version", "max_version", "names"]
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
                               tls: try tls(fields) ?? nil, maxConnections: try maxConnections(fields) ?? nil, origin: "api")
        return (spec, try fields.bool("enabled") ?? true)
    }

    /// `max_connections`: 1 or more, or null for cynic's `--max-connections`; the outer optional
    /// says whether it was given.
    static func maxConnections(_ fields: JSONFields) throws(APIError) -> Int?? {
        guard let given = try fields.unsigned("max_connections", nullable: true) else { return nil }
        guard let number = given else { return .some(nil) }
        guard number > 0, number <= UInt64(Int32.max) else {
            throw fields.invalid("max_connections", "expected a number of connections from 1 to \(Int32.max), or null, got \(number)")
        }
        return .some(Int(number))
    }

    /// `tls`: null (plain TCP), a profile's name, or an object of `TLSSpec`'s fields; the outer
    /// optional says whether it was given.
    static func tls(_ fields: JSONFields) throws(APIError) -> TLSSpec?? {
        guard let value = fields.values["tls"] else { return nil }
        switch value {
        case .null: return .some(nil)
        case .string(let profile):
            guard !profile.isEmpty else { throw fields.invalid("tls", "expected a profile name, null or an object") }
            return TLSSpec(profile: profile)
        case .object: break
        default: throw fields.invalid("tls", "expected a profile name, null or an object, got \(value.kind)")
        }
        guard let tls = try fields.object("tls") else { return nil }
        try tls.allowOnly(tlsFields)
        var spec = TLSSpec()
        if let profile = try tls.string("profile") { spec.profile = profile }
        spec.certificateFile = try tls.string("certificate")
        spec.keyFile = try tls.string("key")
        if (spec.certificateFile == nil) != (spec.keyFile == nil) {
            let missing = spec.certificateFile == nil ? "certificate" : "key"
            throw tls.invalid(missing, "required with `\(missing == "key" ? "certificate" : "key")`")
        }
        if tls.has("profile"), spec.certificateFile != nil {
            throw tls.invalid("profile", "give either `profile` or `certificate` and `key`, not both")
        }
        spec.alpn = try tls.strings("alpn") ?? []
        spec.names = try tls.strings("names")
        spec.minimumVersion = try version(tls, "min_version")
        spec.maximumVersion = try version(tls, "max_version")
        if let problem = spec.problem { throw tls.invalid(problem.field, problem.reason) }
        return spec
    }

    static func version(_ fields: JSONFields, _ key: String) throws(APIError) -> TLSVersion? {
        guard let text = try fields.string(key) else { return nil }
        guard let version = TLSVersion(rawValue: text) else { throw fields.invalid(key, "expected \(TLSVersion.choices), got '\(text)'") }
        return version
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
            // Unnamed repeats are named as the command line names them (latency-2, by
            // ServiceSpec); a name given twice is a mistake.
            let named = (try? JSONFields(item).name("name")) != nil
            if named, shapers.contains(where: { $0.name == shaper.name }) {
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
        // Unnamed, a shaper is named and addressed by its type (.../shapers/TYPE), so the type
        // must be a name too: else the API made a shaper it refuses to be sent back.
        if let problem = JSONFields.problem(withName: shaper) { throw fields.invalid("shaper", problem) }
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
