import ArgumentParser
import CynicConfig
import CynicPlugins
import CynicRuntime
import Logging

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run one service alone: the line a test suite puts in its setup.",
        discussion: """
            Example: cynic serve http-slow --port 0 --param interval_ms=100 (port 0: the kernel picks one; the line printed says which; with --json, one JSON line for a fixture).
            Over TLS: cynic serve http-json --port 8443 --tls expired, and the client trusts "$(cynic tls ca)".
            With --api and no behaviour, cynic serves the control API alone and the test creates its services through it:             cynic serve --api 127.0.0.1:0.
            """)

    @Argument(help: "The behaviour to serve (see `cynic plugins`); none with --api: the services come from the API.")
    var behaviour: String?

    @Option(help: "TCP port; 0 lets the kernel pick one. Default: the behaviour's own.")
    var port: Int?

    @Option(help: "Address to bind.")
    var host: String = ServiceSpec.defaultHost

    @Option(help: ArgumentHelp("Listen on this Unix socket instead of TCP.", valueName: "PATH"))
    var unix: String?

    @Option(name: .customLong("param"), help: ParameterAssignment.help("A parameter of the behaviour; repeatable."))
    var parameters: [ParameterAssignment] = []

    @Option(name: .customLong("shape"), help: ArgumentHelp(
        "A shaper for every connection, in order; repeatable. `probability=P` (0 to 1) applies it to that share of connections; "
            + "`direction=upstream` to what the service sends on its upstream connections instead of to the client.",
        valueName: "NAME[:key=value,...]"))
    var shapers: [String] = []

    @Option(help: "Seed for the draws that decide which shapers apply (reproducible runs).")
    var seed: UInt64?

    @Option(name: .customLong("log-sink"), help: ArgumentHelp("Also run the log sink on this Unix socket.", valueName: "PATH"))
    var logSinkPath: String?

    @OptionGroup(title: "TLS") var tls: TLSServiceOptions
    @OptionGroup var ca: CAOptions
    @OptionGroup var api: APIOptions
    @OptionGroup var plugins: PluginOptions
    @OptionGroup var shutdown: ShutdownOptions
    @OptionGroup(title: "Limits") var limits: LimitOptions
    @OptionGroup var events: EventsOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var logging: LoggingOptions
    @OptionGroup var isolation: IsolateOptions

    func validate() throws {
        if behaviour == nil, api.address == nil {
            throw ValidationError("give a behaviour to serve, or --api ADDR to serve the control API alone (cynic serve --api 127.0.0.1:0)")
        }
        if let port, !(0...65535).contains(port) { throw ValidationError("--port \(port): expected 0-65535") }
        if unix != nil, port != nil { throw ValidationError("give either --port or --unix, not both") }
    }

    func run() async throws {
        logging.bootstrap()
        let logger = Logger(label: "cynic")
        let apiSettings = try api.settings(defaultAddress: nil)
        if isolation.isolate { try await Supervise(api: apiSettings, logger: logger, json: output.json).run() }
        plugins.trust.warnIfUnsafe(logger)
        var runner = Runner(directories: plugins.searchPath, shutdown: shutdown, logger: logger, queuedBytes: limits.makeBudget(), limits: limits,
                            trust: plugins.trust.trust, api: apiSettings, eventsFile: events.file, caFolder: ca.resolvedFolder,
                            json: output.json)
        runner.worker = try isolation.joinSupervisor()
        let logSink: Configuration.LogSinkSetting = logSinkPath.map { .path($0) } ?? .disabled
        guard let behaviour else {
            try await runner.run(.fixed([]), logSink: logSink)
            return
        }
        let address: ServiceAddress
        if let unix {
            address = .unix(path: unix)
        } else if let port {
            address = .tcp(host: host, port: port)
        } else {
            // Only here is the plugin needed before the server loads it: for its default port.
            let catalog = (try? PluginCatalog.load(plugins.searchPath, trust: plugins.trust.trust)) ?? PluginCatalog()
            guard let defaultPort = catalog.plugins[behaviour]?.defaultPort else {
                throw failure(catalog.plugins[behaviour] == nil
                              ? "unknown behaviour '\(behaviour)' (see `cynic plugins`)"
                              : "behaviour '\(behaviour)' has no default port: give --port")
            }
            address = .tcp(host: host, port: Int(defaultPort))
        }
        var shaperSpecs: [ShaperSpec] = []
        for shaper in shapers {
            do {
                shaperSpecs.append(try ShaperSpec(commandLine: shaper))
            } catch {
                throw failure("\(error)")
            }
        }
        let spec = ServiceSpec(name: behaviour, behaviour: behaviour, address: address, parameters: ParameterAssignment.inputs(parameters),
                               shapers: shaperSpecs, seed: seed, tls: tls.spec, origin: "cynic serve")
        try await runner.run(.fixed([spec]), logSink: logSink)
    }
}
