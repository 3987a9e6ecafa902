import CynicPlugins
import Yams

/// What cynic runs: its services and where its log sink listens.
///
/// The file is YAML:
///
///     log_sink:
///       path: /run/user/1000/cynic/log.sock   # or `enabled: false`
///     services:
///       slow-api:                 # the service's name
///         behaviour: http-slow    # defaults to the name
///         host: 127.0.0.1         # default
///         port: 2003              # or `unix: /path/to/socket`
///         params:
///           interval_ms: 250
///         tls: expired            # or a mapping: profile, alpn, min_version, max_version...
public struct Configuration: Sendable, Equatable {
    public enum LogSinkSetting: Sendable, Equatable {
        /// The private per-user default path.
        case defaultPath
        case path(String)
        case disabled
    }

    public var services: [ServiceSpec]
    public var logSink: LogSinkSetting

    public init(services: [ServiceSpec], logSink: LogSinkSetting = .defaultPath) {
        self.services = services
        self.logSink = logSink
    }

    /// One service per plugin that declares a default port, named after its behaviour.
    public static func defaults(for plugins: [Plugin]) -> Configuration {
        let services = plugins.sorted { $0.name < $1.name }.compactMap { plugin -> ServiceSpec? in
            guard let port = plugin.defaultPort else { return nil }
            return ServiceSpec(name: plugin.name, behaviour: plugin.name,
                               address: .tcp(host: ServiceSpec.defaultHost, port: Int(port)),
                               origin: "default service of \(plugin.file)")
        }
        return Configuration(services: services)
    }
}

/// A configuration that cannot be used: one line naming the file, the line, the key and what
/// was expected.
public struct ConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
    public let file: String
    public let line: Int?
    public let column: Int?
    public let message: String

    public var description: String {
        var location = file
        if let line { location += ":\(line)" }
        if let column { location += ":\(column)" }
        // A message quotes what the file says (a key, a value), and that may span lines.
        return Configuration.escaped("\(location): \(message)", quotes: false)
    }
}
