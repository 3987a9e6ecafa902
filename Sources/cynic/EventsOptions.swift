import ArgumentParser

/// Where the record of every connection goes besides the console and the control API: shared by
/// `cynic` (run) and `cynic serve`.
struct EventsOptions: ParsableArguments {
    @Option(name: .customLong("events"), help: ArgumentHelp(
        "Append one JSON line per connection, as it ends, to this file (docs/control-api.md, \"Events\").",
        valueName: "FILE"))
    var file: String?
}
