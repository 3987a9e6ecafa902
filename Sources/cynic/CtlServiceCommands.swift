import ArgumentParser
import CynicConfig
import CynicControlClient

struct CtlServicesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "services",
        abstract: "List the services: behaviour, address, state, connections, shapers.",
        discussion: """
            OPEN/ACCEPTED counts the connections open now and accepted since the service started; \
            each shaper shows as NAME=SHAPER DIRECTION PROBABILITY.

            Example: cynic ctl services
            """)

    @OptionGroup var api: CtlOptions

    func run() async throws {
        try await api.show(.get, "/services", as: [ControlAPI.Service].self, render: ControlAPI.Service.table)
    }
}

struct CtlServiceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "service",
        abstract: "Show one service in detail: parameters, every shaper, seed, origin.",
        discussion: "Example: cynic ctl service db")

    @OptionGroup var api: CtlOptions

    @Argument(help: "The service.")
    var name: String

    func run() async throws {
        try await api.show(.get, ControlAPI.path("services", name), as: ControlAPI.Service.self) { $0.detailLines }
    }
}

struct CtlCreateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Create a service, listening at once; prints it with the address it bound.",
        discussion: """
            Example: cynic ctl create slow http-slow --listen 127.0.0.1:0 --param interval_ms=100 \
            --shape latency:ms=200,probability=0.5 --seed 7
            """)

    @OptionGroup var api: CtlOptions

    @Argument(help: "Its name: unique among the services.")
    var name: String

    @Argument(help: "Its behaviour (see `cynic ctl plugins`).")
    var behaviour: String

    @Option(help: ArgumentHelp("Where it listens: HOST:PORT, [IPv6]:PORT, :PORT (loopback) or unix:/path; port 0 lets "
        + "the kernel pick one. Default 127.0.0.1:0.", valueName: "ADDR"))
    var listen: String?

    @Option(name: .customLong("param"), help: ParameterAssignment.help("A parameter of the behaviour; repeatable."))
    var parameters: [ParameterAssignment] = []

    @Option(name: .customLong("shape"), help: ArgumentHelp("A shaper for its connections, in order; repeatable. " + shaperSpecHelp,
                                                           valueName: "SPEC"),
            transform: parseShaper)
    var shapers: [ShaperSpec] = []

    @Option(help: ArgumentHelp("Seed for the draws that decide which shapers apply (reproducible runs).", valueName: "N"))
    var seed: UInt64?

    @Option(help: ArgumentHelp("Serve it over TLS with this certificate profile (`cynic tls profiles`); "
        + "clients trust the CA of `GET /tls`.", valueName: "PROFILE"))
    var tls: String?

    @Flag(help: "Create it without listening (enable it later with `cynic ctl enable NAME`).")
    var disabled = false

    func run() async throws {
        let service = ControlAPI.NewService(
            name: name, behaviour: behaviour, listen: listen,
            parameters: parameters.isEmpty ? nil : ParameterAssignment.parameters(parameters),
            // A repeated shaper is named as `cynic serve --shape` names it: "latency-2".
            shapers: shapers.isEmpty ? nil : ServiceSpec.namedUniquely(shapers).map(ControlAPI.NewShaper.init),
            enabled: disabled ? false : nil, seed: seed, tls: tls)
        try await api.show(.post, "/services", body: ControlAPI.encode(service), as: ControlAPI.Service.self) { $0.detailLines }
    }
}

struct CtlSetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set",
        abstract: "Change a service: behaviour, parameters, address or seed; prints it.",
        discussion: """
            Only what is given changes, but --param replaces the whole parameter set, as the API does: \
            give every parameter to keep (--clear-params goes back to the behaviour's defaults). \
            Connections in flight finish as they started. Shapers change with `shape` and `unshape`.

            Example: cynic ctl set slow --param interval_ms=500 --param body=tick
            """)

    @OptionGroup var api: CtlOptions

    @Argument(help: "The service.")
    var name: String

    @Option(help: ArgumentHelp("A new behaviour (see `cynic ctl plugins`).", valueName: "BEHAVIOUR"))
    var behaviour: String?

    @Option(name: .customLong("param"), help: ParameterAssignment.help(
        "A parameter; repeatable. Replaces every parameter: those not given go back to their defaults."))
    var parameters: [ParameterAssignment] = []

    @Flag(name: .customLong("clear-params"), help: "Remove every parameter: the behaviour's defaults apply.")
    var clearParameters = false

    @Option(help: ArgumentHelp("A new address: HOST:PORT, [IPv6]:PORT, :PORT or unix:/path.", valueName: "ADDR"))
    var listen: String?

    @Option(help: ArgumentHelp("A new seed for the draws that decide which shapers apply.", valueName: "N"))
    var seed: UInt64?

    func validate() throws {
        if !parameters.isEmpty, clearParameters {
            throw ValidationError("give either --param or --clear-params, not both")
        }
        if behaviour == nil, parameters.isEmpty, !clearParameters, listen == nil, seed == nil {
            throw ValidationError("nothing to change: give --behaviour, --param, --clear-params, --listen or --seed")
        }
    }

    func run() async throws {
        var change = ControlAPI.ServiceChange(behaviour: behaviour, listen: listen, seed: seed)
        if !parameters.isEmpty || clearParameters { change.parameters = ParameterAssignment.parameters(parameters) }
        try await api.show(.patch, ControlAPI.path("services", name), body: ControlAPI.encode(change),
                           as: ControlAPI.Service.self) { $0.detailLines }
    }
}

struct CtlEnableCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enable",
        abstract: "Make a disabled service listen again, on the same address.",
        discussion: "Example: cynic ctl enable db")

    @OptionGroup var api: CtlOptions

    @Argument(help: "The service.")
    var name: String

    func run() async throws {
        try await api.setEnabled(name, true)
    }
}

struct CtlDisableCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "disable",
        abstract: "Stop a service listening: new clients get \"connection refused\"; connections in flight go on.",
        discussion: "Example: cynic ctl disable db")

    @OptionGroup var api: CtlOptions

    @Argument(help: "The service.")
    var name: String

    func run() async throws {
        try await api.setEnabled(name, false)
    }
}

struct CtlDeleteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete",
        abstract: "Delete a service: its listener closes (clients get \"connection refused\").",
        discussion: "Example: cynic ctl delete db")

    @OptionGroup var api: CtlOptions

    @Argument(help: "The service.")
    var name: String

    func run() async throws {
        try await api.perform(.delete, ControlAPI.path("services", name), saying: "deleted \(name)")
    }
}

extension CtlOptions {
    /// `enable` and `disable`: the service's new state in a line.
    func setEnabled(_ name: String, _ enabled: Bool) async throws {
        try await show(.patch, ControlAPI.path("services", name), body: ControlAPI.encode(ControlAPI.ServiceChange(enabled: enabled)),
                       as: ControlAPI.Service.self) { [$0.stateLine] }
    }
}
