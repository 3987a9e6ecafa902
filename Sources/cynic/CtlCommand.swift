import ArgumentParser
import CynicConfig
import CynicControlClient
#if canImport(Glibc)
// @preconcurrency: Swift 6 sees libc's `stdout`/`stderr` globals as shared mutable state.
@preconcurrency import Glibc
#endif

/// `cynic ctl`: the command line of the control API (docs/control-api.md), for people (tables
/// and short lines) and for scripts (`--json`: the API's own answer).
struct CtlCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ctl",
        abstract: "Drive a running cynic through its control API: services, shapers, plugins, events.",
        discussion: """
            Talks to the control API of a running cynic (`cynic`, or `cynic serve --api ADDR` for the API \
            alone) at --api URL, default $CYNIC_API or http://127.0.0.1:8474, with --token or \
            $CYNIC_API_TOKEN as its bearer token. Every change applies to new connections at once. \
            --json prints the API's JSON as it answered, for scripts.

            Example: cynic ctl create db proxy --listen :5433 --param upstream=127.0.0.1:5432 --shape latency:ms=200
            """,
        subcommands: [CtlServicesCommand.self, CtlServiceCommand.self, CtlCreateCommand.self, CtlSetCommand.self,
                      CtlEnableCommand.self, CtlDisableCommand.self, CtlDeleteCommand.self,
                      CtlShapeCommand.self, CtlUnshapeCommand.self, CtlShapersCommand.self,
                      CtlPluginsCommand.self, CtlRescanCommand.self, CtlEventsCommand.self,
                      CtlResetCommand.self, CtlMetricsCommand.self])

    // Declared here too, so `cynic ctl --api URL services` reads as well as `cynic ctl services --api URL`.
    @OptionGroup var api: CtlOptions
}

/// Where the API is and how to show its answers; every `cynic ctl` command has them.
struct CtlOptions: ParsableArguments {
    @Option(name: .customLong("api"), help: ArgumentHelp(
        "The control API: http://HOST:PORT (default: $CYNIC_API, else \(ControlEndpoint.standard)).", valueName: "URL"))
    var endpoint: ControlEndpoint?

    @Option(help: ArgumentHelp("Sent as `Authorization: Bearer TOKEN` (default: $CYNIC_API_TOKEN).", valueName: "TOKEN"))
    var token: String?

    @Flag(help: "Print the API's JSON as it answered, for scripts.")
    var json = false

    /// The client for --api (or $CYNIC_API) and --token (or $CYNIC_API_TOKEN).
    func client() throws -> ControlClient {
        // Line-buffered even into a pipe: `events --follow` is read as it comes.
        setvbuf(stdout, nil, _IOLBF, 0)
        var endpoint = self.endpoint ?? .standard
        if self.endpoint == nil, let text = environmentValue("CYNIC_API") {
            guard let parsed = ControlEndpoint(parsing: text) else {
                throw ctlFailure("CYNIC_API=\(text): expected http://HOST:PORT")
            }
            endpoint = parsed
        }
        return ControlClient(endpoint: endpoint, token: token ?? environmentValue("CYNIC_API_TOKEN"))
    }

    /// Sends the request and answers its successful response; an error is one line and exit 1.
    func call(_ method: ControlMethod, _ path: String, body: [UInt8]? = nil,
              timeout: Duration = .seconds(30)) async throws -> ControlResponse {
        let client = try client()
        do {
            return try await client.request(method, path, json: body, timeout: timeout).requireSuccess()
        } catch {
            throw ctlFailure("\(error)")
        }
    }

    /// Sends the request and prints the answer: as it came with --json, else `render` of it read
    /// as `Resource`.
    func show<Resource: Decodable>(_ method: ControlMethod, _ path: String, body: [UInt8]? = nil,
                                   timeout: Duration = .seconds(30), as type: Resource.Type,
                                   render: (Resource) -> [String]) async throws {
        let response = try await call(method, path, body: body, timeout: timeout)
        if json {
            printRaw(response.body)
            return
        }
        do {
            render(try ControlAPI.decode(type, from: response.body)).forEach { print($0) }
        } catch {
            throw ctlFailure("\(error)")
        }
    }

    /// Sends a request whose answer has no body (204) and prints `line` (nothing with --json).
    func perform(_ method: ControlMethod, _ path: String, saying line: String) async throws {
        let response = try await call(method, path)
        if json {
            printRaw(response.body)
        } else {
            print(line)
        }
    }
}

/// The bytes as they are, ending in a newline; nothing for none.
func printRaw(_ bytes: some Collection<UInt8>) {
    guard !bytes.isEmpty else { return }
    var bytes = Array(bytes)
    if bytes.last != UInt8(ascii: "\n") { bytes.append(UInt8(ascii: "\n")) }
    _ = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, stdout) }
    fflush(stdout)
}

/// A `cynic ctl` failure: one line on standard error, exit status 1.
func ctlFailure(_ message: String) -> ExitCode {
    fputs("cynic ctl: \(message)\n", stderr)
    return ExitCode.failure
}

extension ControlEndpoint: ExpressibleByArgument {
    public init?(argument: String) {
        self.init(parsing: argument)
    }
}

/// Reads `--shape`'s `NAME[:key=value,...]` as `cynic serve` does; its error says what is wrong.
func parseShaper(_ text: String) throws -> ShaperSpec {
    do {
        return try ShaperSpec(commandLine: text)
    } catch {
        throw ValidationError(error.reason)
    }
}

/// The help of `--shape` and of `shape`'s SPEC.
let shaperSpecHelp = "`NAME[:key=value,...]` as `cynic serve --shape` takes it: the keys probability (0 to 1), "
    + "direction (downstream or upstream) and name are the shaper's own, every other key one of its parameters."
