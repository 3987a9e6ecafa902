import ArgumentParser
import CynicConfig
import CynicPlugins
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
    @OptionGroup var plugins: PluginOptions
    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        logging.bootstrap()
        let logger = Logger(label: "cynic")
        let catalog = try plugins.loadCatalog(logger: logger)
        var configuration: Configuration
        if let configFile {
            let text: String
            do {
                text = try String(contentsOfFile: configFile, encoding: .utf8)
            } catch {
                throw failure("cannot read configuration \(configFile): \((error as NSError).localizedDescription)")
            }
            do {
                configuration = try Configuration.parse(yaml: text, file: configFile)
            } catch {
                throw failure("\(error)")
            }
        } else {
            configuration = Configuration.defaults(for: Array(catalog.plugins.values))
        }
        if dumpConfig {
            print(configuration.yaml(plugins: catalog.plugins), terminator: "")
            return
        }
        sink.apply(to: &configuration)
        if configuration.services.isEmpty {
            throw failure(configFile.map { "\($0) has no services" } ?? "no plugin with a default port was found")
        }
        try await Runner(catalog: catalog, logger: logger).run(configuration)
    }
}

struct LogSinkOptions: ParsableArguments {
    @Option(name: .customLong("log-sink"), help: ArgumentHelp("Path of the log sink's Unix socket.", valueName: "PATH"))
    var path: String?

    @Flag(name: .customLong("no-log-sink"), help: "Do not start the log sink.")
    var disabled = false

    func apply(to configuration: inout Configuration) {
        if disabled {
            configuration.logSink = .disabled
        } else if let path {
            configuration.logSink = .path(path)
        }
    }
}
