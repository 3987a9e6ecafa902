import ArgumentParser
import CynicConfig
import CynicPlugins
import CynicRuntime
import Foundation
import Logging

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the default services, or those of a configuration file (the default command).")

    @Option(name: [.short, .customLong("config")], help: ArgumentHelp("Run the services of this YAML file.", valueName: "FILE"))
    var configFile: String?

    @Flag(name: [.short, .customLong("dump-config")], help: "Print the configuration (the default one, or --config's) and exit.")
    var dumpConfig = false

    @OptionGroup var sink: LogSinkOptions
    @OptionGroup var ca: CAOptions
    @OptionGroup var api: APIOptions
    @OptionGroup var plugins: PluginOptions
    @OptionGroup var shutdown: ShutdownOptions
    @OptionGroup(title: "Limits") var limits: LimitOptions
    @OptionGroup var events: EventsOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var logging: LoggingOptions
    @OptionGroup var isolation: IsolateOptions

    func run() async throws {
        logging.bootstrap()
        let logger = Logger(label: "cynic")
        guard dumpConfig else {
            let apiSettings = try api.settings(defaultAddress: APIOptions.defaultAddress)
            if isolation.isolate { try await Supervise(api: apiSettings, logger: logger, json: output.json).run() }
            let source: Server.ServiceSource = configFile.map { .file($0) } ?? .pluginDefaults
            plugins.trust.warnIfUnsafe(logger)
            var runner = Runner(directories: plugins.searchPath, shutdown: shutdown, logger: logger, queuedBytes: limits.makeBudget(),
                                limits: limits, trust: plugins.trust.trust, api: apiSettings, eventsFile: events.file,
                                caFolder: ca.resolvedFolder, json: output.json)
            runner.worker = try isolation.joinSupervisor()
            try await runner.run(source, logSink: sink.setting)
            return
        }
        let catalog = try plugins.loadCatalog(logger: logger)
        let configuration: Configuration
        do {
            configuration = try configFile.map { file throws(ConfigurationError) in try Configuration.read(file: file) }
                ?? Configuration.defaults(for: Array(catalog.plugins.values))
        } catch {
            throw failure("\(error)")
        }
        print(configuration.yaml(plugins: catalog.plugins), terminator: "")
    }
}

struct LogSinkOptions: ParsableArguments {
    @Option(name: .customLong("log-sink"), help: ArgumentHelp("Path of the log sink's Unix socket.", valueName: "PATH"))
    var path: String?

    @Flag(name: .customLong("no-log-sink"), help: "Do not start the log sink.")
    var disabled = false

    /// What the command line says, which wins over the configuration file; nil when silent.
    var setting: Configuration.LogSinkSetting? {
        disabled ? .disabled : path.map { .path($0) }
    }
}
