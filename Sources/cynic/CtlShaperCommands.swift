import ArgumentParser
import CynicConfig
import CynicControlClient

struct CtlShapeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shape",
        abstract: "Add a shaper to a service, after those it has; it applies to new connections.",
        discussion: """
            Example: cynic ctl shape db latency:ms=200,direction=upstream,probability=0.25,name=slow-replies
            """)

    @OptionGroup var api: CtlOptions

    @Argument(help: "The service.")
    var name: String

    @Argument(help: ArgumentHelp(shaperSpecHelp, valueName: "SPEC"), transform: parseShaper)
    var shaper: ShaperSpec

    func run() async throws {
        try await api.show(.post, ControlAPI.path("services", name, "shapers"), body: ControlAPI.encode(ControlAPI.NewShaper(shaper)),
                           as: ControlAPI.Shaper.self) { ["\(name): added shaper \($0.detail)"] }
    }
}

struct CtlUnshapeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unshape",
        abstract: "Remove a shaper from a service, by its name (see `cynic ctl shapers NAME`).",
        discussion: "Example: cynic ctl unshape db latency")

    @OptionGroup var api: CtlOptions

    @Argument(help: "The service.")
    var name: String

    @Argument(help: ArgumentHelp("The shaper's name within the service.", valueName: "SHAPER"))
    var shaper: String

    func run() async throws {
        try await api.perform(.delete, ControlAPI.path("services", name, "shapers", shaper),
                              saying: "\(name): removed shaper \(shaper)")
    }
}

struct CtlShapersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shapers",
        abstract: "List a service's shapers, in the order its connections pass through them.",
        discussion: "Example: cynic ctl shapers db")

    @OptionGroup var api: CtlOptions

    @Argument(help: "The service.")
    var name: String

    func run() async throws {
        try await api.show(.get, ControlAPI.path("services", name, "shapers"), as: [ControlAPI.Shaper].self,
                           render: ControlAPI.Shaper.table)
    }
}
