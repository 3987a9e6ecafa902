import ArgumentParser
import CynicControlClient

struct CtlEventsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events",
        abstract: "Print the connections that ended, one line each: start, service, peer, end, duration, bytes.",
        discussion: """
            Without --follow: the last records (--limit, default 100), oldest first; --wait waits for a \
            first one when none match yet. With --follow: every record as its connection ends, until \
            interrupted. With --json, the API's records as they came (NDJSON with --follow).

            Example: cynic ctl events --service db --follow
            """)

    @OptionGroup var api: CtlOptions

    @Option(help: ArgumentHelp("Only the connections of this service.", valueName: "NAME"))
    var service: String?

    @Option(help: ArgumentHelp("At most this many records, the last ones (the API's default 100, at most 10000).", valueName: "N"))
    var limit: Int?

    @Option(help: ArgumentHelp("Only the records after this id (`last_id` of a previous --json answer).", valueName: "ID"))
    var after: Int?

    @Option(help: ArgumentHelp("When none match yet, wait up to this long for one (at most 60).", valueName: "SECONDS"))
    var wait: Int?

    @Flag(help: "Print each record as its connection ends, until interrupted.")
    var follow = false

    func validate() throws {
        if let limit, limit < 1 { throw ValidationError("--limit \(limit): expected 1 or more") }
        if let wait, wait < 0 { throw ValidationError("--wait \(wait): expected 0 or more seconds") }
        if follow, limit != nil || after != nil || wait != nil {
            throw ValidationError("--follow prints records as they come: --limit, --after and --wait do not apply")
        }
    }

    func run() async throws {
        if follow { return try await followStream() }
        let path = ControlAPI.path("/events", query: [("service", service), ("after", after.map(String.init)),
                                                      ("limit", limit.map(String.init)), ("wait", wait.map(String.init))])
        try await api.show(.get, path, timeout: .seconds(30 + (wait ?? 0)), as: ControlAPI.EventPage.self) { page in
            page.events.isEmpty ? ["no events"] : page.events.map(\.line)
        }
    }

    private func followStream() async throws {
        let client = try api.client()
        let json = api.json
        do {
            try await client.streamLines(ControlAPI.path("/events/stream", query: [("service", service)])) { line in
                if json {
                    printRaw(line)
                } else {
                    print(try ControlAPI.decode(ControlAPI.Event.self, from: Array(line)).line)
                }
            }
        } catch {
            throw ctlFailure("\(error)")
        }
        throw ctlFailure("the API ended the stream (cynic stopped?)")
    }
}
