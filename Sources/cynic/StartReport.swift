import ArgumentParser
import CynicConfig
import CynicRuntime
import Foundation

/// How `cynic` and `cynic serve` write their standard output: lines for people, or for scripts.
struct OutputOptions: ParsableArguments {
    @Flag(help: ArgumentHelp(
        "Standard output for scripts: once everything listens, one line with one JSON object — each service's name, "
            + "behaviour and bound address (host, port or unix path), the control API's URL, the log sink, the local CA — "
            + "and nothing else (the log sink's records go to standard error)."))
    var json = false
}

/// What cynic says on standard output as it starts: where each service, the log sink, the local
/// CA and the control API are.
///
/// For people each is a line as soon as it is known, the address last (as before `--json`). For
/// scripts (`--json`) they are gathered and written as one JSON object on one line once the last
/// is known, so a test fixture reads one line and knows every port, with no prose to parse.
final class StartReport {
    private let json: Bool
    private var services: [ServiceLine] = []
    private var logSink: String?
    private var caCertificate: String?
    private var controlAPI: String?
    /// The process a script signals to stop cynic: under `--isolate`, the supervisor.
    private let pid: Int32

    init(json: Bool, pid: Int32 = getpid()) {
        self.json = json
        self.pid = pid
    }

    func logSink(listeningOn path: String) {
        logSink = path
        say("log sink listening on unix:\(path)")
    }

    func service(_ spec: ServiceSpec, boundTo address: ServiceAddress) {
        let line = ServiceLine(spec: spec, address: address)
        services.append(line)
        // The address last: scripts that predate --json read the port at the end of the line.
        let over = spec.tls.map { " over TLS (\($0.certificateFile ?? "profile " + $0.profile))" } ?? ""
        say("service \(spec.name): behaviour \(spec.behaviour)\(over), listening on \(address)")
    }

    func caCertificate(_ path: String) {
        caCertificate = path
        say("local CA certificate: \(path)")
    }

    /// `url` is "http://HOST:PORT", or "unix:/path" for an API on a Unix socket.
    func controlAPI(listeningOn url: String) {
        controlAPI = url
        say("control API listening on \(url)")
    }

    /// Everything is listening: the JSON line, for scripts.
    func finish() {
        guard json else { return }
        let start = StartJSON(pid: pid, services: services, controlAPI: controlAPI, logSink: logSink, caCertificate: caCertificate)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Plain strings and numbers: encoding cannot fail.
        let data = (try? encoder.encode(start)) ?? Data("{}".utf8)
        print(String(decoding: data, as: UTF8.self))
    }

    /// A log record from the log sink: on standard output for people, beside the service lines;
    /// on standard error with `--json`, which keeps standard output JSON only.
    static func printLogRecord(_ line: String, json: Bool) {
        if json {
            FileHandle.standardError.write(Data((line + "\n").utf8))
        } else {
            print(line)
        }
    }

    private func say(_ line: String) {
        if !json { print(line) }
    }
}

/// A service in the JSON start line: its name and behaviour, and the address it bound as text
/// (`listen`, as the control API writes it) and as parts, so nobody splits "[::1]:80".
struct ServiceLine: Encodable {
    let spec: ServiceSpec
    let address: ServiceAddress

    private enum CodingKeys: String, CodingKey {
        case name, behaviour, listen, host, port, unix, tls
    }

    private enum TLSKeys: String, CodingKey {
        case profile, certificate
    }

    // Written out so that every key is there, null where it does not apply.
    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(spec.name, forKey: .name)
        try container.encode(spec.behaviour, forKey: .behaviour)
        try container.encode(address.description, forKey: .listen)
        switch address {
        case .tcp(let host, let port):
            try container.encode(host, forKey: .host)
            try container.encode(port, forKey: .port)
            try container.encodeNil(forKey: .unix)
        case .unix(let path):
            try container.encodeNil(forKey: .host)
            try container.encodeNil(forKey: .port)
            try container.encode(path, forKey: .unix)
        }
        if let tls = spec.tls {
            var nested = container.nestedContainer(keyedBy: TLSKeys.self, forKey: .tls)
            try nested.encode(tls.certificateFile == nil ? tls.profile : nil, forKey: .profile)
            try nested.encode(tls.certificateFile, forKey: .certificate)
        } else {
            try container.encodeNil(forKey: .tls)
        }
    }
}

/// The JSON start line: `{"ca_certificate": ..., "control_api": ..., "log_sink": ..., "pid": ...,
/// "services": [...], "version": ...}`, null for what is not running.
private struct StartJSON: Encodable {
    let pid: Int32
    let services: [ServiceLine]
    let controlAPI: String?
    let logSink: String?
    let caCertificate: String?

    private enum CodingKeys: String, CodingKey {
        case version, pid, services
        case controlAPI = "control_api", logSink = "log_sink", caCertificate = "ca_certificate"
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(CynicVersion.current, forKey: .version)
        try container.encode(pid, forKey: .pid)
        try container.encode(services, forKey: .services)
        try container.encode(controlAPI, forKey: .controlAPI)
        try container.encode(logSink, forKey: .logSink)
        try container.encode(caCertificate, forKey: .caCertificate)
    }
}
