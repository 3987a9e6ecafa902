import ArgumentParser
import CynicControlClient

struct CtlResetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reset",
        abstract: "Go back to the services cynic started with, all enabled; those created through the API are removed.",
        discussion: "Example: cynic ctl reset")

    @OptionGroup var api: CtlOptions

    func run() async throws {
        try await api.show(.post, "/configuration/reset", as: [ControlAPI.Service].self, render: ControlAPI.Service.table)
    }
}

struct CtlMetricsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "metrics",
        abstract: "Print the metrics in Prometheus's text format: connections, bytes, plugin loads, shapers applied.",
        discussion: "Example: cynic ctl metrics | grep cynic_connections_total")

    @OptionGroup var api: CtlOptions

    func run() async throws {
        printRaw(try await api.call(.get, "/metrics").body)
    }
}
