import ArgumentParser

@main
struct Cynic: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cynic",
        abstract: "Crafty, devious remote services for testing how a client handles network failure.",
        discussion: """
            With no subcommand, cynic runs its services: the default ones (one per behaviour with a \
            default port), or those of --config FILE. Every behaviour is a plugin (.so) loaded \
            from the folder cynic was built in and from each --plugin-dir.
            """,
        subcommands: [RunCommand.self, ServeCommand.self, PluginsCommand.self, CheckCommand.self, NewPluginCommand.self],
        defaultSubcommand: RunCommand.self)
}
