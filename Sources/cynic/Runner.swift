import ArgumentParser
import CynicConfig
import CynicControl
import CynicIsolation
import CynicLogSink
import CynicPlugins
import CynicRuntime
import Dispatch
import Logging
import NIOCore
import NIOPosix
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Runs a set of services until SIGINT or SIGTERM, one line each on standard output, with the
/// log sink, the plugin folders watched for new versions, and SIGHUP reloading the
/// configuration file.
struct Runner {
    let directories: [PluginDirectory]
    let shutdown: ShutdownOptions
    let logger: Logger
    /// The bound on the bytes all connections queue to send (--max-queued-bytes).
    let queuedBytes: QueuedBytesBudget
    /// The bounds on services' clients and the control API's bodies (--max-connections...).
    let limits: LimitOptions
    /// Whose plugin files are loaded (`--allow-unsafe-plugins`).
    var trust: PluginTrust = .ownerOnly
    /// The control API to serve, if any.
    var api: APISettings?
    /// Where every connection's record is appended as a JSON line (`--events`).
    var eventsFile: String?
    /// The local CA's folder (`--ca-dir`); nil: the default.
    var caFolder: String?
    /// The supervisor this process works for, under `--isolate`.
    var worker: WorkerLink?
    /// Standard output for scripts (`--json`): see `StartReport`.
    var json = false

    /// How long after the drain bound stopping may still take before cynic exits anyway: closing
    /// what is left takes milliseconds, unless an event loop is wedged in plugin code.
    static let forcedExitGrace: Duration = .seconds(2)

    func run(_ source: Server.ServiceSource, logSink override: Configuration.LogSinkSetting?) async throws {
        if let raised = raiseOpenFileLimit() {
            logger.debug("open-file limit raised from \(raised.before) to \(raised.after)")
        }
        let metrics = CynicMetrics()
        let events: ConnectionEventLog
        do {
            events = try ConnectionEventLog(logger: logger, file: eventsFile, metrics: metrics)
        } catch {
            throw failure("\(error)")
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: eventLoopCount())
        let control = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let copies: PluginCopies
        do {
            copies = try PluginCopies()
        } catch {
            throw failure("cannot keep private copies of plugins in \(error)")
        }
        if !copies.staleFoldersRemoved.isEmpty {
            logger.debug("removed \(copies.staleFoldersRemoved.count) plugin copy folder(s) left by cynic processes that are gone")
        }
        let watchdog = shutdown.slowCallbackThreshold.map { CallbackWatchdog(threshold: $0, logger: logger) }
        defer { watchdog?.stop() }
        let statusSocket = try? StatusEndpoint.path(in: privateDirectory())
        let forcedExit = ForcedExit(watchdog: watchdog) {
            copies.removeAll()
            if let statusSocket { unlink(statusSocket) }
        }
        let signals = Signals([(SIGINT, .stop), (SIGTERM, .stop), (SIGHUP, .reload)]) { signalName in
            forcedExit.exitNow("second \(signalName)", status: 0)
        }
        let tls = TLSSource(caFolder: caFolder)
        let server = Server(directories: directories, source: source, group: group, controlLoop: control.next(),
                            logger: logger, copies: copies, trust: trust, queuedBytes: queuedBytes,
                            events: events, metrics: metrics, tls: tls, limits: limits.serviceLimits)
        // Under --isolate the supervisor is the process to signal, and the one that stays.
        let report = StartReport(json: json, pid: worker == nil ? getpid() : getppid())
        var sink: LogSink?
        defer { copies.removeAll() }
        if let worker { await server.quarantine(worker.start.quarantine) }
        do {
            var configuration = try await server.start()
            if let override { configuration.logSink = override }
            sink = try await startLogSink(configuration.logSink, group: group, report: report)
            if configuration.services.isEmpty, case .file(let file) = source {
                throw CynicError("\(file) has no services")
            }
            if let worker { await restoreServices(of: server, for: worker) }
        } catch {
            await server.stop()
            try? await sink?.stop()
            try? await group.shutdownGracefully()
            try? await control.shutdownGracefully()
            throw failure("\(error)")
        }
        for service in await server.runningServices {
            report.service(service.spec, boundTo: service.boundAddress)
        }
        // What a test trusts for the TLS services, those of now and those the API creates later.
        do {
            report.caCertificate(try tls.contexts().ca.certificatePath)
        } catch {
            logger.warning("no local CA, so no TLS service can start: \(error)")
        }
        let status = await startStatusEndpoint(server: server, group: group)
        let controlAPI: ControlAPI?
        do {
            controlAPI = try await startControlAPI(server: server, group: group, report: report)
        } catch {
            await server.stop()
            await status?.stop()
            try? await sink?.stop()
            try? await group.shutdownGracefully()
            try? await control.shutdownGracefully()
            throw failure("\(error)")
        }
        let reporting = worker.map { startReporting(server: server, to: $0) }
        report.finish()
        for await event in signals.events {
            if event == .reload {
                await server.reloadConfiguration()
            } else {
                break
            }
        }
        // From here on nothing may wait for plugin code: the forced exit ends the process at the
        // deadline whatever the event loops are doing.
        forcedExit.arm(after: shutdown.drain + Self.forcedExitGrace)
        logger.info("stopping: no new connections; open ones have \(shutdown.drainSeconds) s to end (a second SIGTERM or SIGINT exits at once)")
        reporting?.cancel()
        let services = await server.runningServices
        await server.stop()
        await status?.stop()
        await controlAPI?.stop()
        await drain(services)
        try? await sink?.stop()
        // Closes every channel still open: their plugins hear conn_end, their records say why.
        ServerShutdown.begin()
        try? await group.shutdownGracefully()
        try? await control.shutdownGracefully()
        await events.finish()
        forcedExit.disarm()
    }

    /// Waits until the connections of `services` have ended, for at most the drain bound.
    private func drain(_ services: [Service]) async {
        let clock = ContinuousClock()
        let deadline = clock.now + shutdown.drain
        var open = services.reduce(0) { $0 + $1.openConnections }
        while open > 0, clock.now < deadline {
            try? await Task.sleep(for: .milliseconds(50))
            open = services.reduce(0) { $0 + $1.openConnections }
        }
        if open > 0 {
            logger.info("closing \(open) connection(s) still open after \(shutdown.drainSeconds) s")
        }
    }

    /// The control API, when asked for. One asked for with --api that cannot listen stops cynic;
    /// the default one (port 8474, toxiproxy's) only warns: cynic serves without it.
    private func startControlAPI(server: Server, group: any EventLoopGroup, report: StartReport) async throws -> ControlAPI? {
        // A worker serves it where the supervisor relays its own address (--isolate).
        guard let api = worker == nil ? api : worker?.controlAPI(api) else { return nil }
        do {
            let controlAPI = try await ControlAPI.start(server: server, address: api.address, token: api.token, group: group,
                                                        logger: logger, maxBodyBytes: limits.maxAPIBodyBytes.bytes)
            if worker != nil {
                // The supervisor's address is the one clients use; it gave it to this worker.
                logger.debug("control API for the supervisor on \(controlAPI.boundAddress)")
                if let relayed = Supervise.relayedAPIURL { report.controlAPI(listeningOn: relayed) }
            } else if case .unix = api.address {
                report.controlAPI(listeningOn: "\(controlAPI.boundAddress)")
            } else {
                report.controlAPI(listeningOn: "http://\(controlAPI.boundAddress)")
            }
            if api.token != nil { logger.info("the control API requires its token (Authorization: Bearer TOKEN)") }
            return controlAPI
        } catch {
            guard api.required else {
                logger.warning("control API not started: \(error) (give --api ADDR for another address, or --no-api)")
                return nil
            }
            throw CynicError("control API: \(error)")
        }
    }

    /// `cynic plugins` asks a running cynic what it serves through this socket. Without it
    /// cynic still serves: one warning.
    private func startStatusEndpoint(server: Server, group: any EventLoopGroup) async -> StatusEndpoint? {
        do {
            let path = StatusEndpoint.path(in: try privateDirectory())
            return try await StatusEndpoint.start(path: path, server: server, group: group)
        } catch {
            logger.warning("no status socket for `cynic plugins`: \(error)")
            return nil
        }
    }

    private func startLogSink(_ setting: Configuration.LogSinkSetting, group: any EventLoopGroup,
                              report: StartReport) async throws -> LogSink? {
        let path: String
        switch setting {
        case .disabled: return nil
        case .path(let given): path = given
        case .defaultPath: path = try LogSink.defaultSocketPath()
        }
        let json = self.json
        let sink = LogSink(path: path, logger: Logger(label: "cynic.log-sink")) { record in
            StartReport.printLogRecord(record.consoleLine, json: json)
        }
        try await sink.start(on: group)
        report.logSink(listeningOn: path)
        return sink
    }
}

struct CynicError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Signals, as an awaitable stream of what they ask for.
///
/// A second stop signal does not join the stream: it calls `onSecondStop` at once, on Dispatch's
/// thread, since the first one may be waiting on something that never ends (a wedged event loop).
final class Signals: @unchecked Sendable {
    // @unchecked: `sources` is immutable and only kept alive here; the stream is Sendable.
    enum Event: Sendable { case stop, reload }

    private let sources: [any DispatchSourceSignal]
    let events: AsyncStream<Event>

    init(_ handled: [(Int32, Event)], onSecondStop: @escaping @Sendable (_ signalName: String) -> Void) {
        let (stream, continuation) = AsyncStream.makeStream(of: Event.self)
        events = stream
        let stopsReceived = StopCount()
        sources = handled.map { signalNumber, event in
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber)
            // @Sendable: a handler written here would otherwise inherit the main actor and trap
            // when Dispatch runs it on its own thread.
            source.setEventHandler { @Sendable in
                if event == .stop, stopsReceived.value.add(1, ordering: .relaxed).newValue > 1 {
                    onSecondStop(signalNumber == SIGINT ? "SIGINT" : "SIGTERM")
                } else {
                    continuation.yield(event)
                }
            }
            source.resume()
            return source
        }
    }
}

/// How many stop signals came, shared by every signal's handler.
private final class StopCount: Sendable {
    let value = Atomic<Int>(0)
}

/// The per-user 0700 folder cynic keeps its sockets in (the log sink's default folder).
func privateDirectory() throws -> String {
    let sink = try LogSink.defaultSocketPath()
    return String(sink[..<sink.lastIndex(of: "/")!])
}
