import Foundation

/// The API's resources as `cynic ctl` shows them to people (`--json` shows the API's own JSON).
extension ControlAPI.Service {
    /// One service a row: `cynic ctl services`, and `reset`'s answer.
    public static func table(_ services: [ControlAPI.Service]) -> [String] {
        guard !services.isEmpty else { return ["no services (add one with `cynic ctl create NAME BEHAVIOUR`)"] }
        let rows = services.map { service in
            [service.name, service.behaviour, service.listen, service.enabledText, service.connectionCounts,
             service.shapers.map { $0.isEmpty ? "-" : $0.map(\.summary).joined(separator: ", ") } ?? "-"]
        }
        return TextTable(headers: ["NAME", "BEHAVIOUR", "LISTEN", "ENABLED", "OPEN/ACCEPTED", "SHAPERS"], rows: rows).lines
    }

    /// Everything about one service, a line a field: `cynic ctl service NAME`, `create`, `set`.
    public var detailLines: [String] {
        var rows = [["name", name], ["behaviour", behaviour], ["listen", listen], ["enabled", enabledText]]
        if let connections { rows.append(["connections", "\(connections.open) open, \(connections.accepted) accepted"]) }
        let assignments = ControlAPI.assignments(parameters)
        rows.append(["parameters", assignments.isEmpty ? "none" : assignments.joined(separator: ", ")])
        let shaperLines = (shapers ?? []).map(\.detail)
        rows.append(["shapers", shaperLines.first ?? "none"])
        rows += shaperLines.dropFirst().map { ["", $0] }
        rows.append(["seed", seed.map { "\($0)" } ?? "none (random)"])
        if let tls {
            let versions = [tls.min_version.map { "from TLS \($0)" }, tls.max_version.map { "up to TLS \($0)" }].compactMap { $0 }
            let alpn = (tls.alpn ?? []).isEmpty ? [] : ["ALPN " + (tls.alpn ?? []).joined(separator: ",")]
            rows.append(["tls", ([tls.certificate ?? "profile \(tls.profile ?? "valid")"] + versions + alpn).joined(separator: ", ")])
        }
        if let origin { rows.append(["origin", origin]) }
        return TextTable(rows: rows).lines
    }

    /// What `enable` and `disable` say.
    public var stateLine: String {
        enabled == false
            ? "\(name) disabled: \(listen) refuses new connections"
            : "\(name) enabled: listening on \(listen)"
    }

    private var enabledText: String {
        guard let enabled else { return "-" }
        if enabled, listening == false { return "yes (not listening)" }
        return enabled ? "yes" : "no"
    }

    private var connectionCounts: String {
        connections.map { "\($0.open)/\($0.accepted)" } ?? "-"
    }
}

extension ControlAPI.Shaper {
    /// `name=shaper direction probability`: "latency=latency downstream 1".
    public var summary: String {
        "\(name)=\(shaper) \(direction ?? "downstream") \(ControlAPI.number(probability ?? 1))"
    }

    /// The summary and the parameters: "latency=latency downstream 1 (ms=200)".
    public var detail: String {
        let assignments = ControlAPI.assignments(parameters)
        return assignments.isEmpty ? summary : summary + " (" + assignments.joined(separator: ", ") + ")"
    }

    /// One shaper a row: `cynic ctl shapers NAME`.
    public static func table(_ shapers: [ControlAPI.Shaper]) -> [String] {
        guard !shapers.isEmpty else { return ["no shapers"] }
        let rows = shapers.map { shaper in
            [shaper.name, shaper.shaper, shaper.direction ?? "downstream", ControlAPI.number(shaper.probability ?? 1),
             ControlAPI.assignments(shaper.parameters).joined(separator: ", ")]
        }
        return TextTable(headers: ["NAME", "SHAPER", "DIRECTION", "PROBABILITY", "PARAMETERS"], rows: rows).lines
    }
}

extension ControlAPI.PluginList {
    /// One plugin a row, then each refused file with its reason: `cynic ctl plugins`, `rescan`.
    public var lines: [String] {
        let rows = plugins.map { plugin in
            [plugin.name, plugin.kind ?? "-", plugin.version ?? "-",
             plugin.generations.map { "\($0.reduce(0) { $0 + ($1.connections ?? 0) })" } ?? "-", plugin.file ?? "-"]
        }
        var lines = plugins.isEmpty
            ? ["no plugins"]
            : TextTable(headers: ["NAME", "KIND", "VERSION", "CONNECTIONS", "FILE"], rows: rows).lines
        let refused = refused ?? []
        if !refused.isEmpty {
            lines.append("")
            lines += refused.map { "refused \($0.file): \($0.reason)" }
        }
        return lines
    }
}

extension ControlAPI.Event {
    /// One connection in a line: when it started, service, peer, how it ended and by whom, how
    /// long it lasted, the bytes each way (and upstream's, when it had upstream connections).
    /// "2026-12-01T12:00:00.123Z  db  127.0.0.1:51234  peer_closed by peer  12.5 ms  120 B in, 4096 B out"
    public var line: String {
        var fields = [started ?? "-", service ?? "-", peer ?? "-",
                      (end ?? "-") + (endedBy.map { " by \($0)" } ?? ""),
                      durationMS.map { String(format: "%.1f ms", $0) } ?? "-",
                      Self.bytes(client)]
        if let upstream { fields.append("upstream " + Self.bytes(upstream)) }
        if let reason { fields.append("(\(reason))") }
        return fields.joined(separator: "  ")
    }

    private static func bytes(_ counts: ControlAPI.Bytes?) -> String {
        "\(counts?.bytesIn.map(String.init) ?? "-") B in, \(counts?.bytesOut.map(String.init) ?? "-") B out"
    }
}

extension ControlAPI {
    /// `key=value` for each parameter, sorted by key.
    static func assignments(_ parameters: [String: Text]?) -> [String] {
        (parameters ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
    }

    /// 1 as "1", 0.25 as "0.25".
    static func number(_ value: Double) -> String {
        String(format: "%g", value)
    }
}
