import ArgumentParser
import CynicControl
import CynicRuntime

/// The bounds on what clients can make cynic hold, each with the default a user of a real server
/// would expect (see `ServiceLimits`, `QueuedBytesBudget`, `ControlAPI.defaultMaxBodyBytes` for
/// why each): shared by `cynic` (run) and `cynic serve`.
struct LimitOptions: ParsableArguments {
    @Option(name: .customLong("max-connections"), help: ArgumentHelp(
        "The most connections one service holds at once; one over it is accepted and closed at once. A service's own max_connections wins.",
        valueName: "N"))
    var maxConnections = ServiceLimits.defaultMaxConnections

    @Option(name: .customLong("max-header-bytes"), help: ArgumentHelp(
        "The most bytes of an HTTP request's target and headers; over it the client gets 431. Suffixes K, M, G (powers of 1024).",
        valueName: "BYTES"))
    var maxHeaderBytes = ByteCount(ServiceLimits.defaultMaxHeaderBytes)

    @Option(name: .customLong("max-body-bytes"), help: ArgumentHelp(
        "The most bytes of an HTTP request's body; over it the client gets 413.", valueName: "BYTES"))
    var maxBodyBytes = ByteCount(ServiceLimits.defaultMaxBodyBytes)

    @Option(name: .customLong("max-queued-bytes"), help: ArgumentHelp(
        "The most bytes all connections together may have queued and not yet sent; beyond it `send` returns CYNIC_ERR_FULL.",
        valueName: "BYTES"))
    var maxQueuedBytes = ByteCount(QueuedBytesBudget.defaultLimit)

    @Option(name: .customLong("max-api-body-bytes"), help: ArgumentHelp(
        "The most bytes of a control API request's body; over it the API answers 413 with its JSON error.", valueName: "BYTES"))
    var maxAPIBodyBytes = ByteCount(ControlAPI.defaultMaxBodyBytes)

    func validate() throws {
        if maxConnections < 1 {
            throw ValidationError("--max-connections \(maxConnections): expected 1 or more")
        }
    }

    var serviceLimits: ServiceLimits {
        ServiceLimits(maxConnections: maxConnections, maxHeaderBytes: maxHeaderBytes.bytes, maxBodyBytes: maxBodyBytes.bytes)
    }

    func makeBudget() -> QueuedBytesBudget { QueuedBytesBudget(limit: maxQueuedBytes.bytes) }
}
