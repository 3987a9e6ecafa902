import ArgumentParser
import CynicIsolation

/// `--isolate`, on `cynic` and `cynic serve`: the plugins run in a worker process that a
/// supervisor restarts when it crashes. The worker is this executable again, with the same
/// arguments and the hidden `--isolated-worker FD`.
struct IsolateOptions: ParsableArguments {
    @Flag(name: .customLong("isolate"), help: ArgumentHelp(
        "Run the plugins in a worker process, restarted within a second when a plugin crashes it; the listeners and the control API stay up, and the plugin is refused until a new version of it is installed."))
    var isolate = false

    @Option(name: .customLong("isolated-worker"), help: ArgumentHelp(visibility: .private))
    var workerDescriptor: Int32?

    func validate() throws {
        if isolate, workerDescriptor != nil { throw ValidationError("--isolate starts its own worker: give it without --isolated-worker") }
    }

    /// This process's link to its supervisor, when it is a worker.
    func joinSupervisor() throws -> WorkerLink? {
        guard let workerDescriptor else { return nil }
        do {
            return try WorkerLink.join(descriptor: workerDescriptor)
        } catch {
            throw failure("--isolated-worker: \(error)")
        }
    }

    /// The worker's command line: this one's, without `--isolate`.
    static var workerArguments: [String] {
        CommandLine.arguments.dropFirst().filter { $0 != "--isolate" }
    }
}

extension WorkerLink {
    /// The control API as a worker serves it: on the supervisor's private socket, with the
    /// token asked for; none when the supervisor serves none.
    func controlAPI(_ asked: APISettings?) -> APISettings? {
        guard let asked, let path = start.apiSocket else { return nil }
        return APISettings(address: .unix(path: path), token: asked.token, required: true)
    }
}
