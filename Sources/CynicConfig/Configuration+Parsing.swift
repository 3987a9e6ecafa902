import CynicPlugins
import Yams

extension Configuration {
    /// Reads and parses a configuration file.
    public static func read(file: String) throws(ConfigurationError) -> Configuration {
        try parse(yaml: try ConfigurationFile.text(of: file), file: file)
    }

    /// Parses a configuration file's text. `file` names it in errors.
    public static func parse(yaml text: String, file: String) throws(ConfigurationError) -> Configuration {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw ConfigurationError(yamlError: error, file: file)
        } catch {
            throw ConfigurationError(file: file, line: nil, column: nil, message: "\(error)")
        }
        guard let root else { throw ConfigurationError(file: file, line: nil, column: nil, message: "the file is empty") }
        let reader = NodeReader(file: file)
        let top = try reader.mapping(root, key: "the top level", allowed: ["services", "log_sink"])

        var services: [ServiceSpec] = []
        if let servicesNode = top["services"] {
            for (name, node) in try reader.entries(servicesNode.value, key: "services") {
                services.append(try reader.service(named: name, node))
            }
        }
        var logSink = LogSinkSetting.defaultPath
        if let sinkNode = top["log_sink"] {
            let sink = try reader.mapping(sinkNode.value, key: "log_sink", allowed: ["path", "enabled"])
            if let enabled = sink["enabled"], try !reader.bool(enabled.value, key: "log_sink.enabled") {
                logSink = .disabled
            } else if let path = sink["path"] {
                logSink = .path(try reader.string(path.value, key: "log_sink.path"))
            }
        }
        return Configuration(services: services, logSink: logSink)
    }
}

/// Reads typed values out of YAML nodes, with errors that name the key and the line.
private struct NodeReader {
    let file: String

    func error(_ node: Node, _ message: String) -> ConfigurationError {
        ConfigurationError(file: file, line: node.mark?.line, column: node.mark?.column, message: message)
    }

    /// The entries of a mapping in file order, refusing duplicate keys.
    func entries(_ node: Node, key: String) throws(ConfigurationError) -> [(String, Node)] {
        // An empty section (`params:` followed only by comments) is an empty mapping.
        if node.null != nil { return [] }
        guard case .mapping(let mapping) = node else { throw error(node, "\(key): expected a mapping of names to settings") }
        var seen: Set<String> = []
        var result: [(String, Node)] = []
        for (keyNode, value) in mapping {
            guard case .scalar(let scalar) = keyNode else { throw error(keyNode, "\(key): keys must be plain names") }
            guard seen.insert(scalar.string).inserted else { throw error(keyNode, "\(key).\(scalar.string): given twice") }
            result.append((scalar.string, value))
        }
        return result
    }

    /// A mapping whose keys must be among `allowed`: a typo is an error, not a silent default.
    func mapping(_ node: Node, key: String, allowed: [String]) throws(ConfigurationError) -> [String: (key: Node, value: Node)] {
        guard case .mapping(let mapping) = node else { throw error(node, "\(key): expected a mapping") }
        var result: [String: (key: Node, value: Node)] = [:]
        for (keyNode, value) in mapping {
            guard case .scalar(let scalar) = keyNode else { throw error(keyNode, "\(key): keys must be plain names") }
            let name = scalar.string
            guard allowed.contains(name) else {
                throw error(keyNode, "\(key): unknown key '\(name)' (expected one of: \(allowed.joined(separator: ", ")))")
            }
            guard result[name] == nil else { throw error(keyNode, "\(key).\(name): given twice") }
            result[name] = (keyNode, value)
        }
        return result
    }

    func scalar(_ node: Node, key: String, expected: String) throws(ConfigurationError) -> Node.Scalar {
        guard case .scalar(let scalar) = node else { throw error(node, "\(key): expected \(expected)") }
        return scalar
    }

    func string(_ node: Node, key: String) throws(ConfigurationError) -> String {
        let value = try scalar(node, key: key, expected: "a string").string
        guard !value.isEmpty else { throw error(node, "\(key): expected a non-empty string") }
        return value
    }

    func bool(_ node: Node, key: String) throws(ConfigurationError) -> Bool {
        let scalar = try scalar(node, key: key, expected: "true or false")
        guard let value = Bool.construct(from: scalar) else {
            throw error(node, "\(key): expected true or false, got '\(scalar.string)'")
        }
        return value
    }

    func service(named name: String, _ node: Node) throws(ConfigurationError) -> ServiceSpec {
        let key = "services.\(name)"
        let fields = try mapping(node, key: key, allowed: ["behaviour", "host", "port", "unix", "params", "shapers", "seed", "tls",
                                                                 "max_connections"])
        let behaviour = try fields["behaviour"].map { field throws(ConfigurationError) in
            try string(field.value, key: "\(key).behaviour")
        } ?? name
        let address: ServiceAddress
        switch (fields["port"], fields["unix"]) {
        case (.some, .some):
            throw error(node, "\(key): give either `port` or `unix`, not both")
        case (.none, .none):
            throw error(node, "\(key): needs `port` (TCP) or `unix` (a socket path)")
        case (.some(let port), .none):
            let text = try scalar(port.value, key: "\(key).port", expected: "a port number").string
            guard let number = Int(text), (0...65535).contains(number) else {
                throw error(port.value, "\(key).port: expected a port number (0-65535), got '\(text)'")
            }
            let host = try fields["host"].map { field throws(ConfigurationError) in
                try string(field.value, key: "\(key).host")
            } ?? ServiceSpec.defaultHost
            address = .tcp(host: host, port: number)
        case (.none, .some(let path)):
            if let host = fields["host"] { throw error(host.key, "\(key).host: a unix service has no host") }
            address = .unix(path: try string(path.value, key: "\(key).unix"))
        }
        let parameters = try fields["params"].map { field throws(ConfigurationError) in
            try self.parameters(field.value, key: "\(key).params")
        } ?? [:]
        var shapers: [ShaperSpec] = []
        if let list = fields["shapers"] {
            guard case .sequence(let items) = list.value else {
                throw error(list.value, "\(key).shapers: expected a list of shapers")
            }
            for (index, item) in items.enumerated() {
                shapers.append(try shaper(item, key: "\(key).shapers[\(index)]"))
            }
        }
        let seed = try fields["seed"].map { field throws(ConfigurationError) -> UInt64 in
            let text = try scalar(field.value, key: "\(key).seed", expected: "a number").string
            guard let value = UInt64(text) else {
                throw error(field.value, "\(key).seed: expected an unsigned 64-bit integer, got '\(text)'")
            }
            return value
        }
        let tls = try fields["tls"].flatMap { field throws(ConfigurationError) in try self.tls(field.value, key: "\(key).tls") }
        let maxConnections = try fields["max_connections"].map { field throws(ConfigurationError) -> Int in
            let text = try scalar(field.value, key: "\(key).max_connections", expected: "a number").string
            guard let value = Int(text), value > 0 else {
                throw error(field.value, "\(key).max_connections: expected a number of connections, 1 or more, got '\(text)'")
            }
            return value
        }
        return ServiceSpec(name: name, behaviour: behaviour, address: address, parameters: parameters,
                           shapers: shapers, seed: seed, tls: tls, maxConnections: maxConnections,
                           origin: "\(file):\(node.mark?.line ?? 0)")
    }

    /// `tls: PROFILE`, `tls: true|false`, or a mapping of `profile`, `certificate` and `key`,
    /// `alpn`, `min_version`, `max_version` and `names`.
    func tls(_ node: Node, key: String) throws(ConfigurationError) -> TLSSpec? {
        if case .scalar(let scalar) = node {
            if let on = Bool.construct(from: scalar) { return on ? TLSSpec() : nil }
            guard !scalar.string.isEmpty else { throw error(node, "\(key): expected a profile name, true, or a mapping") }
            return TLSSpec(profile: scalar.string)
        }
        let fields = try mapping(node, key: key,
                                 allowed: ["profile", "certificate", "key", "alpn", "min_version", "max_version", "names"])
        var spec = TLSSpec()
        if let profile = fields["profile"] { spec.profile = try string(profile.value, key: "\(key).profile") }
        spec.certificateFile = try fields["certificate"].map { field throws(ConfigurationError) in
            try string(field.value, key: "\(key).certificate")
        }
        spec.keyFile = try fields["key"].map { field throws(ConfigurationError) in try string(field.value, key: "\(key).key") }
        switch (spec.certificateFile, spec.keyFile) {
        case (.some, .none): throw error(node, "\(key): `certificate` needs its `key`")
        case (.none, .some): throw error(node, "\(key): `key` needs its `certificate`")
        default: break
        }
        if fields["profile"] != nil, spec.certificateFile != nil {
            throw error(node, "\(key): give either `profile` or `certificate` and `key`, not both")
        }
        if let alpn = fields["alpn"] { spec.alpn = try strings(alpn.value, key: "\(key).alpn") }
        if let names = fields["names"] { spec.names = try strings(names.value, key: "\(key).names") }
        for (field, path) in [("min_version", \TLSSpec.minimumVersion), ("max_version", \TLSSpec.maximumVersion)] {
            guard let value = fields[field] else { continue }
            let text = try scalar(value.value, key: "\(key).\(field)", expected: "a TLS version").string
            guard let version = TLSVersion(rawValue: text) else {
                throw error(value.value, "\(key).\(field): expected \(TLSVersion.choices), got '\(text)'")
            }
            spec[keyPath: path] = version
        }
        if let problem = spec.problem { throw error(node, "\(key).\(problem.field): \(problem.reason)") }
        return spec
    }

    /// A list of strings, or one string as a list of one.
    func strings(_ node: Node, key: String) throws(ConfigurationError) -> [String] {
        if case .scalar = node { return [try string(node, key: key)] }
        guard case .sequence(let items) = node else { throw error(node, "\(key): expected a list of names") }
        var result: [String] = []
        for (index, item) in items.enumerated() { result.append(try string(item, key: "\(key)[\(index)]")) }
        return result
    }

    /// `shaper: NAME`, optional `name`, `probability` (0 to 1), `direction` and `params`.
    func shaper(_ node: Node, key: String) throws(ConfigurationError) -> ShaperSpec {
        let fields = try mapping(node, key: key, allowed: ["shaper", "name", "probability", "direction", "params"])
        guard let name = fields["shaper"] else { throw error(node, "\(key): needs `shaper: NAME`") }
        var probability = 1.0
        if let field = fields["probability"] {
            let text = try scalar(field.value, key: "\(key).probability", expected: "a number").string
            guard let value = Double(text), (0...1).contains(value) else {
                throw error(field.value, "\(key).probability: expected a number from 0 to 1, got '\(text)'")
            }
            probability = value
        }
        var direction = ShaperDirection.downstream
        if let field = fields["direction"] {
            let text = try scalar(field.value, key: "\(key).direction", expected: ShaperDirection.choices).string
            guard let value = ShaperDirection(rawValue: text) else {
                throw error(field.value, "\(key).direction: expected \(ShaperDirection.choices), got '\(text)'")
            }
            direction = value
        }
        let parameters = try fields["params"].map { field throws(ConfigurationError) in
            try self.parameters(field.value, key: "\(key).params")
        } ?? [:]
        let label = try fields["name"].map { field throws(ConfigurationError) in try string(field.value, key: "\(key).name") }
        return ShaperSpec(shaper: try string(name.value, key: "\(key).shaper"), name: label, probability: probability,
                          direction: direction, parameters: parameters)
    }

    func parameters(_ node: Node, key: String) throws(ConfigurationError) -> [String: ParameterInput] {
        var parameters: [String: ParameterInput] = [:]
        for (parameter, value) in try entries(node, key: key) {
            let text = try scalar(value, key: "\(key).\(parameter)", expected: "a single value").string
            // `~` or `null`: the plugin's default, as if the line were not there.
            if value.null != nil { continue }
            parameters[parameter] = ParameterInput(text, origin: "\(file):\(value.mark?.line ?? 0)")
        }
        return parameters
    }
}

extension ConfigurationError {
    init(yamlError: YamlError, file: String) {
        switch yamlError {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
             .composer(let context, let problem, let mark, _):
            let what = [context?.text, problem].compactMap { $0 }.joined(separator: " ")
            self.init(file: file, line: mark.line, column: mark.column, message: "not valid YAML: \(what)")
        case .reader(let problem, let offset, let value, let yaml):
            // Yams says this one over three lines (the line, then a caret under it): the line
            // and column say as much in one. `offset` counts characters, as Yams reads it.
            let before = offset.map { yaml.prefix($0) } ?? ""
            let lines = before.split(separator: "\n", omittingEmptySubsequences: false)
            let hex = String(UInt32(bitPattern: value), radix: 16, uppercase: true)
            let character = "U+" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
            self.init(file: file, line: offset == nil ? nil : lines.count, column: offset == nil ? nil : (lines.last?.count ?? 0) + 1,
                      message: "not valid YAML: \(problem) (\(character))")
        case .duplicatedKeysInMapping(let duplicates, let context):
            let keys = duplicates.map { "'\($0)'" }.joined(separator: ", ")
            self.init(file: file, line: context.mark.line, column: context.mark.column,
                      message: "key \(keys) given twice in one mapping")
        default:
            self.init(file: file, line: nil, column: nil, message: "not valid YAML: \(yamlError)")
        }
    }
}
