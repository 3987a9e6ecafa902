import CynicConfig
import CynicPlugins
import Logging
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// Everything cynic runs, kept current while it serves: the plugins of its folders, watched and
/// swapped generation by generation, and the services of its configuration.
///
/// A new version of a plugin is loaded from a private copy and checked completely — descriptor,
/// and the parameters of every service that uses it — before it takes a connection; then new
/// connections go to it while the old generation finishes those it holds, and is unloaded (a C
/// image) once the last one ends. A version that fails leaves the old one serving.
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

    private let directories: [PluginDirectory]
    private let source: ServiceSource
    private let group: any EventLoopGroup
    private let logger: Logger
    private let copies: PluginCopies?
    private let trust: PluginTrust
    /// The bound on the bytes all connections of every service queue to send.
    private let queuedBytes: QueuedBytesBudget

    /// The current generation of each behaviour.
    private var plugins: [String: Plugin] = [:]
    /// Which behaviour each plugin file provides now.
    private var behaviourOfFile: [String: String] = [:]
    private var refusals: [String: PluginRefusal] = [:]
    private var services: [String: Service] = [:]
    /// Service names in the order they were configured, for listings.
    private var serviceOrder: [String] = []
    private var logSink: Configuration.LogSinkSetting = .defaultPath
    /// Earlier generations, watched without being kept alive: a C image is unloaded as soon as
    /// its last connection ends.
    private var retired: [WeakPlugin] = []
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
    /// `controlLoop` runs the server's own work; give it an event loop of its own.
    public init(directories: [PluginDirectory], source: ServiceSource, group: any EventLoopGroup,
                controlLoop: any EventLoop, logger: Logger, copies: PluginCopies?, trust: PluginTrust = .ownerOnly,
                queuedBytes: QueuedBytesBudget = .processWide, watch: Bool = true) {
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
            for file in files { _ = loadInitial(file) }
        }
        let configuration = try readConfiguration()
        logSink = configuration.logSink
        var started: [Service] = []
        for spec in configuration.services {
            do {
                started.append(try await Service.start(spec, plugins: plugins, group: group, logger: logger,
                                                       queuedBytes: queuedBytes))
            } catch {
                for service in started { await service.stop() }
                throw ServerError(message: error.description)
            }
        }
        for service in started {
            add(service)
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
            for service in services.values { group.addTask { await service.stop() } }
        }
    }

    /// The services, in configuration order.
    public var runningServices: [Service] { serviceOrder.compactMap { services[$0] } }

    // MARK: Plugin files

    /// Called with the plugin files that changed on disk: appeared, rewritten or removed.
    public func pluginFilesChanged(_ files: [String]) async {
        for file in files {
            // Whatever has the name is installed or refused with its reason: a dangling link or
            // a FIFO named `x.so` gets its "refused" line, not silence.
            if nameExists(file) {
                await install(file)
            } else {
                await retire(file: file)
            }
        }
        retired.removeAll { $0.plugin == nil }
    }

    private func loadInitial(_ file: String) -> Plugin? {
        do throws(PluginRefusal) {
            let plugin = try Plugin.load(file: file, copies: copies, trust: trust)
            if let existing = plugins[plugin.name] {
                throw PluginRefusal(file: file, reason: .duplicateName(plugin.name, firstFile: existing.file))
            }
            plugins[plugin.name] = plugin
            behaviourOfFile[file] = plugin.name
            return plugin
        } catch {
            refusals[file] = error
            logger.warning("\(error)")
            return nil
        }
    }

    /// A new or rewritten file: load its new generation, check it against every service that
    /// will use it, then swap.
    private func install(_ file: String) async {
        let previousName = behaviourOfFile[file]
        let previous = previousName.flatMap { plugins[$0] }
        let kept = previous.map { "; version \($0.versionLabel) keeps serving" } ?? ""
        let plugin: Plugin
        do throws(PluginRefusal) {
            plugin = try Plugin.load(file: file, copies: copies, trust: trust)
            if let owner = plugins[plugin.name], owner.file != file {
                throw PluginRefusal(file: file, reason: .duplicateName(plugin.name, firstFile: owner.file))
            }
        } catch {
            refusals[file] = error
            logger.error("\(error)\(kept)")
            return
        }
        if let previous, previous.version == plugin.version, previous.name == plugin.name {
            return  // rewritten with the same bytes
        }
        // Every service that will use the new generation gets its instance now: a parameter the
        // new version refuses refuses the version, before anything changes.
        var setups: [(Service, ServiceSetup)] = []
        for service in runningServices where service.spec.uses(plugin.name) {
            do {
                setups.append((service, try Service.makeSetup(service.spec, plugins: plugins.merging([plugin.name: plugin]) { $1 })))
            } catch {
                let refusal = PluginRefusal(file: file, reason: .unusableByService(error.description))
                refusals[file] = refusal
                logger.error("\(refusal) (version \(plugin.versionLabel))\(kept)")
                return
            }
        }
        refusals[file] = nil
        if let previousName, previousName != plugin.name {
            await retire(file: file)
        }
        plugins[plugin.name] = plugin
        behaviourOfFile[file] = plugin.name
        if let previous, previous.name == plugin.name {
            retired.append(WeakPlugin(plugin: previous))
            logger.info("swapped \(plugin.name): version \(previous.versionLabel) → \(plugin.versionLabel) (\(file)); \(previous.connections.current) connection(s) stay on \(previous.versionLabel)")
        } else {
            logger.info("loaded \(plugin.name) version \(plugin.versionLabel) (\(file))")
        }
        for (service, setup) in setups {
            if service.isListening {
                service.swap(to: setup)
            } else {
                do {
                    try await service.resume(with: setup)
                    logger.info("service \(service.spec.name) listens again on \(service.boundAddress)")
                } catch {
                    logger.error("\(error)")
                }
            }
        }
        await startDefaultService(of: plugin)
    }

    /// In the default set-up a plugin with a default port brings its own service.
    private func startDefaultService(of plugin: Plugin) async {
        guard case .pluginDefaults = source, services[plugin.name] == nil,
              let spec = Configuration.defaults(for: [plugin]).services.first else { return }
        do {
            let service = try await Service.start(spec, plugins: plugins, group: group, logger: logger, queuedBytes: queuedBytes)
            add(service)
            logger.info("service \(spec.name): behaviour \(plugin.name), listening on \(service.boundAddress)")
        } catch {
            logger.error("\(error)")
        }
    }

    /// A removed file: its behaviour's services stop accepting until it comes back.
    private func retire(file: String) async {
        refusals[file] = nil
        guard let name = behaviourOfFile.removeValue(forKey: file), let plugin = plugins.removeValue(forKey: name) else {
            return
        }
        retired.append(WeakPlugin(plugin: plugin))
        logger.warning("behaviour \(name) removed (\(file)); \(plugin.connections.current) connection(s) stay on version \(plugin.versionLabel)")
        for service in runningServices where service.isListening && service.spec.uses(name) {
            await service.suspend()
            logger.warning("service \(service.spec.name) stopped accepting: behaviour \(name) is gone")
        }
    }

    // MARK: Configuration

    private func readConfiguration() throws(ServerError) -> Configuration {
        switch source {
        case .pluginDefaults:
            return Configuration.defaults(for: Array(plugins.values))
        case .fixed(let specs):
            return Configuration(services: specs, logSink: .disabled)
        case .file(let path):
            do {
                return try Configuration.read(file: path)
            } catch {
                throw ServerError(message: error.description)
            }
        }
    }

    /// SIGHUP: the file is checked and every new listener bound before anything changes; then
    /// services removed stop, changed ones take new connections on their new setup (open ones
    /// finish on the old), new ones start accepting, unchanged ones are left alone. A file with
    /// any mistake, or a listener that cannot bind, is refused whole: nothing changes.
    public func reloadConfiguration() async {
        guard case .file(let path) = source else {
            logger.info("no configuration file to reload")
            return
        }
        let configuration: Configuration
        var setups: [String: ServiceSetup] = [:]
        do {
            configuration = try Configuration.read(file: path)
            for spec in configuration.services where !(services[spec.name]?.spec.sameService(as: spec) ?? false) {
                setups[spec.name] = try Service.makeSetup(spec, plugins: plugins)
            }
        } catch {
            logger.error("configuration reload refused, nothing changed: \(error)")
            return
        }
        let plan = ReloadPlan(
            running: runningServices.map { ReloadPlan.Running(spec: $0.spec, listen: $0.listenSettings) },
            wanted: configuration.services.map { spec in
                ReloadPlan.Wanted(spec: spec, listen: setups[spec.name].map { ListenSettings($0.behaviour.listen) } ?? ListenSettings())
            })
        // Bound, not yet accepting: the old services serve on until every one of these is bound.
        // The actor is re-entered at these awaits: a plugin swapped meanwhile is not in `setups`,
        // so a service this reload changes starts on the generation current when it began.
        var bound: [String: Service] = [:]
        for case .listen(let spec) in plan.steps {
            do {
                bound[spec.name] = try await Service.bindWithoutAccepting(spec, setup: setups[spec.name]!, group: group, logger: logger,
                                                                          queuedBytes: queuedBytes)
            } catch {
                for service in bound.values { await service.stop() }
                logger.error("configuration reload refused, nothing changed: \(error)")
                return
            }
        }
        await commit(plan, setups: setups, bound: bound, path: path)
    }

    /// Performs a checked plan whose new listeners are all bound.
    private func commit(_ plan: ReloadPlan, setups: [String: ServiceSetup], bound: [String: Service], path: String) async {
        var next: [String: Service] = [:]
        for name in plan.removed {
            await services[name]?.stop()
            logger.info("service \(name) removed")
        }
        var rebinds: [(Service, ServiceSpec)] = []
        for step in plan.steps {
            switch step {
            case .keep(let name):
                next[name] = services[name]
            case .handOver(let from, let spec):
                let service = services[from]!
                service.handOver(to: spec, setup: setups[spec.name]!)
                next[spec.name] = service
                let origin = from == spec.name ? "changed" : "taking over the listener of \(from)"
                logger.info("service \(spec.name): behaviour \(spec.behaviour), listening on \(service.boundAddress) (\(origin); open connections finish as they started)")
            case .rebind(let from, let spec):
                let service = services[from]!
                next[spec.name] = service
                rebinds.append((service, spec))
            case .listen(let spec):
                let service = bound[spec.name]!
                service.startAccepting()
                next[spec.name] = service
                logger.info("service \(spec.name): behaviour \(spec.behaviour), listening on \(service.boundAddress)")
                warnIfBeyondLoopback(service)
            }
        }
        services = next
        serviceOrder = plan.steps.map { step in
            switch step {
            case .keep(let name): name
            case .handOver(_, let spec), .rebind(_, let spec), .listen(let spec): spec.name
            }
        }
        // Last, and the one part that can fail after the commit: see `Service.rebind`.
        var failures: [String] = []
        for (service, spec) in rebinds {
            do {
                try await service.rebind(to: spec, setup: setups[spec.name]!)
                logger.info("service \(spec.name): behaviour \(spec.behaviour), listening anew on \(service.boundAddress) (its listen settings changed)")
            } catch {
                failures.append("\(error)")
            }
        }
        if failures.isEmpty {
            logger.info("configuration reloaded from \(path)")
        } else {
            logger.error("configuration reloaded from \(path), except: \(failures.joined(separator: "; "))")
        }
    }

    /// One warning for a listener others can reach: a harness answering the whole network is
    /// rarely what its user meant.
    private func warnIfBeyondLoopback(_ service: Service) {
        if let warning = service.boundAddress.beyondLoopbackWarning(for: "service '\(service.spec.name)'") {
            logger.warning("\(warning)")
        }
    }

    private func add(_ service: Service) {
        services[service.spec.name] = service
        if !serviceOrder.contains(service.spec.name) { serviceOrder.append(service.spec.name) }
    }

    // MARK: Status

    /// What this server runs: each service with its address and connections, each behaviour
    /// with its live generations and the connections each holds, and every refused file.
    public func statusLines() -> [String] {
        var lines = ["services:"]
        for service in runningServices {
            let state = service.isListening ? "listening on \(service.boundAddress)" : "not accepting (behaviour gone)"
            lines.append("  \(service.spec.name): behaviour \(service.spec.behaviour), \(state), \(service.openConnections) open connection(s)")
        }
        lines.append("behaviours:")
        for plugin in plugins.values.sorted(by: { $0.name < $1.name }) {
            let mapping = plugin.staysMapped ? "links the Swift runtime, stays mapped" : "unloaded when unused"
            lines.append("  \(plugin.name): version \(plugin.versionLabel) (\(plugin.file)), \(plugin.connections.current) connection(s), \(mapping)")
            for old in retired.compactMap(\.plugin) where old.name == plugin.name && old !== plugin {
                lines.append("    older version \(old.versionLabel): \(old.connections.current) connection(s) still on it")
            }
        }
        for old in retired.compactMap(\.plugin) where plugins[old.name] == nil {
            lines.append("  \(old.name) (removed): version \(old.versionLabel), \(old.connections.current) connection(s) still on it")
        }
        for refusal in refusals.values.sorted(by: { $0.file < $1.file }) {
            lines.append("refused plugin \(refusal.file): \(refusal.reason)")
        }
        return lines
    }

    private func nameExists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }
}

private struct WeakPlugin {
    weak var plugin: Plugin?
}

extension Plugin {
    var versionLabel: String { version.map { String($0.prefix(12)) } ?? "unversioned" }
}

extension ServiceSpec {
    /// The same service, wherever in the file it is written.
    func sameService(as other: ServiceSpec) -> Bool {
        name == other.name && behaviour == other.behaviour && address == other.address && seed == other.seed
            && parameters.mapValues(\.text) == other.parameters.mapValues(\.text)
            && shapers.map(\.shaper) == other.shapers.map(\.shaper)
            && shapers.map(\.probability) == other.shapers.map(\.probability)
            && shapers.map(\.direction) == other.shapers.map(\.direction)
            && shapers.map { $0.parameters.mapValues(\.text) } == other.shapers.map { $0.parameters.mapValues(\.text) }
    }

    /// Whether the service runs code of the plugin `name`, as its behaviour or a shaper.
    func uses(_ name: String) -> Bool {
        behaviour == name || shapers.contains { $0.shaper == name }
    }
}

public struct ServerError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}
