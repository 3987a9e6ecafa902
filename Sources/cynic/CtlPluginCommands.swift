import ArgumentParser
import CynicControlClient

struct CtlPluginsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plugins",
        abstract: "List the plugins a running cynic has loaded, and every file it refused, with the reason.",
        discussion: """
            CONNECTIONS counts the connections every loaded version of the plugin holds now.

            Example: cynic ctl plugins
            """)

    @OptionGroup var api: CtlOptions

    func run() async throws {
        try await api.show(.get, "/plugins", as: ControlAPI.PluginList.self) { $0.lines }
    }
}

struct CtlRescanCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rescan",
        abstract: "Read the plugin folders again, as the watcher does when a file changes; lists the plugins.",
        discussion: """
            The watcher usually sees a new or changed .so by itself; rescan is for a folder it cannot watch \
            (a network file system) or a script that must not go on before the plugin is loaded.

            Example: cynic ctl rescan
            """)

    @OptionGroup var api: CtlOptions

    func run() async throws {
        try await api.show(.post, "/plugins/rescan", as: ControlAPI.PluginList.self) { $0.lines }
    }
}
