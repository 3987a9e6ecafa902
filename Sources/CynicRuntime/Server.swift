import CynicConfig
import CynicPlugins
import Logging
import NIOCore

/// Everything cynic runs, kept current while it serves: the plugins of its folders, watched and
/// swapped generation by generation, and the services of its configuration.
///
/// The actor owns the state and sequences the concerns, each in a place of its own: which plugins
/// are current, which file provides what and which were refused (`PluginRegistry`); installing,
/// retiring and restoring generations as files change (`Server+HotSwap`); reloading the
/// configuration (`Server+Reload`, planned by `ReloadPlan`); the services plugins bring of their
/// own (`Server+DefaultServices`); and the status text (`StatusReport`).
public actor Server {
    /// Where the services come from.
    public enum ServiceSource: Sendable {
        /// One service per plugin with a default port, named after it; a plugin dropped in later
        /// with a default port starts its own.
        case pluginDefaults
        /// These services, as given (`cynic serve`).
        case fixed([ServiceSpec])
        /// A configuration file, read again on `reloadConfiguration()` (SIGHUP).
        case file(String)
    }

    // Internal rather than private: the concerns the server sequences live in extensions of
    // their own files (Server+HotSwap, Server+Reload, Server+DefaultServices).
    let directories: [PluginDirectory]
    let source: ServiceSource
    let group: any EventLoopGroup
    let logger: Logger
    let copies: PluginCopies?
    let trust: PluginTrust
    /// The bound on the bytes all connections of every service queue to send.
    let queuedBytes: QueuedBytesBudget
    /// The bounds every service puts on its clients (a service's `max_connections` wins).
    let limits: ServiceLimits
    /// Every service's connections, recorded as they end; nil when nobody asked.
    public nonisolated let events: ConnectionEventLog?
    /// What `GET /metrics` shows (`metricsExposition()`); nil when nobody asked.
    public nonisolated let metrics: CynicMetrics?
    /// The local CA and the TLS contexts of every TLS service.
    public nonisolated let tls: TLSSource

    /// Every plugin found, current and retired, and every file refused.
    var registry = PluginRegistry()
    var services = ServiceList()
    /// Services turned off through the control API, with how each listened: it listens again so.
    var disabled: [String: ListenSettings?] = [:]
    /// Services waiting for a new version of a plugin that crashed a worker (Server+Quarantine).
    var heldBack: [ServiceSpec] = []
    /// Changes to the services (a reload, each control API call) run one at a time: the actor
    /// is re-entered at every await, and two changes interleaved could bind one name twice.
    private var changeInProgress = false
    private var changesWaiting: [CheckedContinuation<Void, Never>] = []
    private var logSink: Configuration.LogSinkSetting = .defaultPath
    private var watcher: FolderWatcher?

    private let watch: Bool
    private let controlLoop: any EventLoop

    /// The control thread of the header: plugins are loaded, configured and destroyed there,
    /// never on Swift's shared cooperative pool, where a slow load would hold up unrelated work
    /// (and blocked work elsewhere could hold up a swap).
    public nonisolated var unownedExecutor: UnownedSerialExecutor {
        controlLoop.executor.asUnownedSerialExecutor()
    }

    /// With `watch`, the plugin folders are watched and every change is installed as it lands.
    /// `controlLoop` runs the server's own work; give it an event loop of its own. `events` gets
    /// the record of every connection of every service; `metrics` counts them and plugin loads.
    public init(directories: [PluginDirectory], source: ServiceSource, group: any EventLoopGroup,
                controlLoop: any EventLoop, logger: Logger, copies: PluginCopies?, trust: PluginTrust = .ownerOnly,
                queuedBytes: QueuedBytesBudget = .processWide, watch: Bool = true,
                events: ConnectionEventLog? = nil, metrics: CynicMetrics? = nil, tls: TLSSource = .default,
                limits: ServiceLimits = .defaults) {
        self.events = events
        self.limits = limits
        self.tls = tls
        self.metrics = metrics
        self.trust = trust
        self.controlLoop = controlLoop
        self.directories = directories
        self.watch = watch
        self.source = source
        self.group = group
        self.logger = logger
        self.copies = copies
        self.queuedBytes = queuedBytes
    }

    // MARK: Start and stop

    /// Loads every plugin and the configuration, then starts every service: all of them, or
    /// none and one line saying why.
    public func start() async throws(ServerError) -> Configuration {
        for directory in directories {
            let files: [String]
            do {
                files = try directory.pluginFiles()
            } catch {
                throw ServerError(message: error.description)
            }
            for file in files { loadAtStart(file) }
        }
        let configuration = try readConfiguration()
        logSink = configuration.logSink
        var started: [Service] = []
        for spec in holdingBackQuarantined(configuration.services) {
            do throws(ServiceError) {
                let setup: ServiceSetup
                do {
                    setup = try Service.makeSetup(spec, plugins: registry.current, tls: tls)
                } catch {
                    // A plugin's own service whose create or configure fails is the plugin's
                    // fault, not the user's: one line, as when it is dropped in hot, and the
                    // other services start.
                    guard case .pluginDefaults = source else { throw error }
                    logger.error("\(error)")
                    continue
                }
                started.append(try await Service.start(spec, setup: setup, group: group, logger: logger,
                                                       queuedBytes: queuedBytes, events: events, limits: limits))
            } catch {
                for service in started { await service.stop() }
                throw ServerError(message: error.description)
            }
        }
        for service in started {
            services.add(service)
            warnIfBeyondLoopback(service)
        }
        if watch {
            do {
                let executor = EventLoopTaskExecutor(controlLoop)
                watcher = try FolderWatcher(directories: directories) { [weak self] files in
                    guard let self else { return }
                    Task(executorPreference: executor) { await self.pluginFilesChanged(files) }
                }
            } catch {
                await stop()
                throw ServerError(message: error.description)
            }
        }
        return configuration
    }

    /// Stops watching and accepting; connections still open end on their own.
    public func stop() async {
        watcher?.stop()
        watcher = nil
        // All at once: a listener on an event loop a plugin has wedged never finishes closing, and
        // must not keep the others accepting.
        await withTaskGroup(of: Void.self) { group in
            for service in services.inOrder { group.addTask { await service.stop() } }
        }
    }

    /// The services, in configuration order.
    public var runningServices: [Service] { services.inOrder }

    /// The metrics as Prometheus text, with each service's open connections as of now; empty
    /// without metrics.
    public func metricsExposition() -> String {
        guard let metrics else { return "" }
        var open: [String: Int] = [:]
        for service in runningServices { open[service.spec.name, default: 0] += service.openConnections }
        return metrics.exposition(openConnections: open)
    }

    /// One warning for a listener others can reach: a harness answering the whole network is
    /// rarely what its user meant.
    func warnIfBeyondLoopback(_ service: Service) {
        if let warning = service.boundAddress.beyondLoopbackWarning(for: "service '\(service.spec.name)'") {
            logger.warning("\(warning)")
        }
    }

    /// Runs `change` once no other change is under way, in the order they came.
    func serializedChange<T: Sendable>(_ change: () async -> T) async -> T {
        if changeInProgress {
            await withCheckedContinuation { changesWaiting.append($0) }
        }
        changeInProgress = true
        defer {
            if changesWaiting.isEmpty {
                changeInProgress = false
            } else {
                // Handed over directly: nobody can slip in between.
                changesWaiting.removeFirst().resume()
            }
        }
        return await change()
    }

    // MARK: Status

    /// What this server runs: each service with its address and connections, each behaviour
    /// with its live generations and the connections each holds, and every refused file.
    public func statusLines() -> [String] {
        StatusReport(services: runningServices.map(StatusReport.Service.init), behaviours: registry.generations,
                     refusals: registry.sortedRefusals).lines
    }
}

public struct ServerError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}
