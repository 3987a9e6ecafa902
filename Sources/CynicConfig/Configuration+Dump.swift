import CynicPlugins

extension Configuration {
    /// The configuration as a file `parse` reads back, with every parameter of each service's
    /// behaviour written out — given values as set, defaults as comments to edit — so a dump is a
    /// starting point that documents itself.
    public func yaml(plugins: [String: Plugin]) -> String {
        var lines = [
            "# cynic configuration. Run it with: cynic --config FILE",
            "# Each entry under `services` is one listener: a behaviour, an address, parameters.",
            "# Several services may share a behaviour with different parameters.",
            "# `shapers:` lists faults applied to a service's connections, in order; each entry is",
            "# `shaper: NAME`, `name` (how the control API calls it; default: the shaper's),",
            "# `probability` (0 to 1, default 1: the share of connections it applies to),",
            "# `direction` (downstream, the default: what the service sends to its client; upstream:",
            "# what it sends on the upstream connections it opens) and `params`.",
            "# `tls:` makes a service speak TLS (its behaviour sees plaintext): a certificate profile",
            "# (`tls: expired`; `cynic tls profiles` lists them) or a mapping of `profile` (or",
            "# `certificate` and `key` files), `alpn`, `min_version`, `max_version` and `names`.",
            "# `max_connections:` bounds the connections a service holds at once (default: cynic's",
            "# --max-connections); one over it is accepted and closed at once.",
        ]
        switch logSink {
        case .defaultPath: lines += ["", "log_sink:", "  enabled: true  # or path: /some/dir/log.sock"]
        case .path(let path): lines += ["", "log_sink:", "  path: \(Self.quoted(path))"]
        case .disabled: lines += ["", "log_sink:", "  enabled: false"]
        }
        lines += ["", "services:"]
        for service in services {
            lines.append("  \(Self.quoted(service.name)):")
            if let summary = plugins[service.behaviour]?.summary, !summary.isEmpty {
                lines.append("    # \(summary)")
            }
            lines.append("    behaviour: \(Self.quoted(service.behaviour))")
            switch service.address {
            case .tcp(let host, let port):
                lines.append("    host: \(Self.quoted(host))")
                lines.append("    port: \(port)")
            case .unix(let path):
                lines.append("    unix: \(Self.quoted(path))")
            }
            if let seed = service.seed { lines.append("    seed: \(seed)") }
            if let most = service.maxConnections { lines.append("    max_connections: \(most)") }
            if let tls = service.tls { lines += Self.yaml(tls) }
            if !service.shapers.isEmpty {
                lines.append("    shapers:")
                for shaper in service.shapers {
                    lines.append("      - shaper: \(Self.quoted(shaper.shaper))")
                    if shaper.name != shaper.shaper { lines.append("        name: \(Self.quoted(shaper.name))") }
                    if shaper.probability != 1 { lines.append("        probability: \(shaper.probability)") }
                    lines.append("        direction: \(shaper.direction.rawValue)")
                    if !shaper.parameters.isEmpty {
                        lines.append("        params:")
                        for (name, input) in shaper.parameters.sorted(by: { $0.key < $1.key }) {
                            lines.append("          \(Self.key(name)): \(Self.quoted(input.text))")
                        }
                    }
                }
            }
            let specs = plugins[service.behaviour]?.parameters ?? []
            let unknown = service.parameters.keys.filter { name in !specs.contains { $0.name == name } }.sorted()
            guard !specs.isEmpty || !unknown.isEmpty else { continue }
            lines.append("    params:")
            for spec in specs {
                let doc = "# \(spec.type.cName)" + (spec.doc.isEmpty ? "" : ": \(spec.doc)")
                if let given = service.parameters[spec.name] {
                    lines.append("      \(Self.key(spec.name)): \(Self.quoted(given.text))  \(doc)")
                } else if let text = spec.defaultText {
                    lines.append("      # \(Self.key(spec.name)): \(Self.quoted(text))  \(doc)")
                } else {
                    lines.append("      # \(Self.key(spec.name)): \(spec.type == .string ? "(unset)" : "(required)")  \(doc)")
                }
            }
            for name in unknown {
                lines.append("      \(Self.key(name)): \(Self.quoted(service.parameters[name]!.text))")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// A service's `tls:` entry, every field given written out.
    static func yaml(_ tls: TLSSpec) -> [String] {
        var lines = ["    tls:"]
        if let certificate = tls.certificateFile, let key = tls.keyFile {
            lines += ["      certificate: \(quoted(certificate))", "      key: \(quoted(key))"]
        } else {
            lines.append("      profile: \(quoted(tls.profile))")
        }
        if !tls.alpn.isEmpty { lines.append("      alpn: [\(tls.alpn.map(quoted).joined(separator: ", "))]") }
        if let names = tls.names { lines.append("      names: [\(names.map(quoted).joined(separator: ", "))]") }
        if let version = tls.minimumVersion { lines.append("      min_version: \(quoted(version.rawValue))") }
        if let version = tls.maximumVersion { lines.append("      max_version: \(quoted(version.rawValue))") }
        return lines
    }

    /// A parameter's name as a mapping key: as it is when it is a plain name (`interval_ms`),
    /// else quoted, since a name the file gave in quotes can hold anything YAML reads as syntax.
    static func key(_ name: String) -> String {
        let plain = name.unicodeScalars.first.map { $0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "_" } ?? false
            && name.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "_.-".unicodeScalars.contains($0)) }
        return plain ? name : quoted(name)
    }

    /// A YAML double-quoted scalar: always safe, whatever the text.
    static func quoted(_ text: String) -> String {
        "\"" + escaped(text, quotes: true) + "\""
    }

    /// The text with its control characters as YAML's escapes (`\n`, `\t`, `\x0d`), so it
    /// stays on one line; with `quotes`, `"` and `\` too, as inside a double-quoted scalar.
    static func escaped(_ text: String, quotes: Bool) -> String {
        var result = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"" where quotes: result += "\\\""
            case "\\" where quotes: result += "\\\\"
            case "\n": result += "\\n"
            case "\t": result += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                result += "\\x" + String(scalar.value, radix: 16).leftPadded(to: 2)
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        String(repeating: "0", count: max(0, width - count)) + self
    }
}
