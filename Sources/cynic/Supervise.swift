import CynicConfig
import CynicIsolation
import Foundation
import Logging
import NIOPosix
#if canImport(Glibc)
import Glibc
#endif

/// `--isolate`: this process becomes the supervisor. It serves the control API's address itself
/// (relayed to the worker's), starts the worker and keeps it running, passes SIGHUP on, and
/// on SIGTERM or SIGINT stops the worker and exits with its status.
struct Supervise {
    let api: APISettings?
    let logger: Logger
    /// `--json`: the worker writes the start line (with this supervisor's API address and pid);
    /// the supervisor writes nothing to standard output.
    let json: Bool

    /// The environment variable that tells the worker the control API's address as clients reach
    /// it (the supervisor's, which may have been port 0), for its `--json` start line.
    static let relayedAPIVariable = "CYNIC_ISOLATE_API_URL"

    /// In a worker: the supervisor's control API URL, when it serves one.
    static var relayedAPIURL: String? { ProcessInfo.processInfo.environment[relayedAPIVariable] }

    func run() async throws -> Never {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var relay: APIRelay?
        let workerAPI = try privateDirectory() + "/isolate-\(getpid())-api.sock"
        if let api {
            do {
                let started = try await APIRelay.start(address: api.address, worker: workerAPI, group: group, logger: logger)
                let url = if case .unix = api.address { "\(started.boundAddress)" } else { "http://\(started.boundAddress)" }
                // Inherited by every worker spawned from here on.
                setenv(Self.relayedAPIVariable, url, 1)
                if !json { print("control API listening on \(url)") }
                relay = started
            } catch {
                guard api.required else {
                    logger.warning("control API not started: \(error) (give --api ADDR for another address, or --no-api)")
                    return try await supervise(relay: nil, workerAPI: nil, group: group)
                }
                throw failure("control API: cannot listen on \(api.address): \(error)")
            }
        }
        return try await supervise(relay: relay, workerAPI: relay == nil ? nil : workerAPI, group: group)
    }

    private func supervise(relay: APIRelay?, workerAPI: String?, group: MultiThreadedEventLoopGroup) async throws -> Never {
        let supervisor = Supervisor(arguments: IsolateOptions.workerArguments, apiSocket: workerAPI, logger: logger)
        // A second stop goes to the worker too: it then exits without draining.
        let signals = Signals([(SIGINT, .stop), (SIGTERM, .stop), (SIGHUP, .reload)]) { _ in supervisor.stop() }
        let forwarding = Task {
            for await event in signals.events {
                if event == .reload { supervisor.reload() } else { supervisor.stop() }
            }
        }
        let status = await supervisor.run()
        forwarding.cancel()
        await relay?.stop()
        if let workerAPI { unlink(workerAPI) }
        try? await group.shutdownGracefully()
        fflush(nil)
        exit(status)
    }
}
