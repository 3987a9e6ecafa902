import ArgumentParser
import CynicRuntime

@main
struct Cynic: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cynic",
        abstract: "Crafty, devious remote services for testing how a client handles network failure.",
        discussion: """
            With no subcommand, cynic runs its services: the default ones (one per behaviour with a \
            default port), or those of --config FILE. Every behaviour is a plugin (.so), found \
            in this order: the plugins that came with cynic, ~/.local/lib/cynic/plugins, each \
            folder of CYNIC_PLUGIN_PATH, each --plugin-dir. Plugin folders are watched: a new \
            or changed .so is loaded while cynic serves.
            """,
        version: CynicVersion.line,
        subcommands: [RunCommand.self, ServeCommand.self, PluginsCommand.self, CheckCommand.self, NewPluginCommand.self, CtlCommand.self, TLSCommand.self],
        defaultSubcommand: RunCommand.self)
}
