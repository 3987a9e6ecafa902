import CynicConfig
import CynicPlugins
import Logging

/// What the control API reads and changes. Every change is one `apply` of the whole wanted list
/// of services, as a configuration reload is: checked and bound before anything changes, so a
/// refused change changes nothing, and the services it does not name are not touched.
extension Server {
    // MARK: Reading

    /// The services, in order, as the control API shows them.
    public func serviceStatuses() -> [ServiceStatus] {
        runningServices.map(status(of:))
    }

    public func serviceStatus(_ name: String) -> ServiceStatus? {
        services[name].map(status(of:))
    }

    private func status(of service: Service) -> ServiceStatus {
        ServiceStatus(spec: service.spec, boundAddress: service.boundAddress,
                      enabled: disabled[service.spec.name] == nil, listening: service.isListening,
                      openConnections: service.openConnections, acceptedConnections: service.acceptedConnections,
                      behaviourVersion: registry.current[service.spec.behaviour]?.versionLabel)
    }

    /// Every plugin with its live generations, and every file refused.
    public func pluginListing() -> PluginListing {
        let generations = registry.generations
        let plugins = registry.current.values.sorted { $0.name < $1.name }.map { plugin in
            let live = generations.first { $0.name == plugin.name }
            let older = live?.older ?? []
            return PluginListing.Entry(plugin: plugin, generations: [
                PluginListing.Generation(version: plugin.versionLabel, file: plugin.file,
                                         connections: plugin.connections.current, current: true),
            ] + older.map { PluginListing.Generation(version: $0.versionLabel, file: $0.file, connections: $0.connections, current: false) })
        }
        return PluginListing(plugins: plugins, refused: registry.sortedRefusals)
    }

    // MARK: Changing

    /// Starts a new service. `enabled: false` makes it turned off: bound once, so that port 0 gets
    /// the port it will keep, then not listening until it is enabled.
    public func createService(_ spec: ServiceSpec, enabled: Bool = true) async throws(ControlError) -> ServiceStatus {
        try await change { () throws(ControlError) in
            guard services[spec.name] == nil else {
                throw ControlError(.conflict, "service '\(spec.name)' already exists", field: "name")
            }
            try await applyChecked(runningServices.map(\.spec) + [spec])
            if !enabled, let service = services[spec.name] { await disable(service, dropConnections: false) }
            return status(of: services[spec.name]!)
        }
    }

    /// Changes a service with `edit` (its name stays), then turns it on or off when `enabled` is
    /// given. Off, it stops accepting; `dropConnections` also closes the connections it has
    /// open (what toxiproxy does when a proxy is disabled). `reshapeOpenConnections` gives the
    /// connections already open the shapers added and takes away those removed, as toxiproxy
    /// does with toxics; otherwise only new connections see the change.
    public func changeService(_ name: String, enabled: Bool? = nil, dropConnections: Bool = false,
                              reshapeOpenConnections: Bool = false,
                              _ edit: @Sendable (inout ServiceSpec) throws(ControlError) -> Void = { _ in }) async throws(ControlError) -> ServiceStatus {
        try await change { () throws(ControlError) in
            guard let service = services[name] else { throw ControlError.serviceNotFound(name) }
            var spec = service.spec
            try edit(&spec)
            spec.name = name
            spec.shapers = ServiceSpec.namedUniquely(spec.shapers)
            let before = service.spec
            if !spec.sameService(as: before) {
                try await applyChecked(runningServices.map { $0.spec.name == name ? spec : $0.spec })
            }
            guard let changed = services[name] else { throw ControlError.serviceNotFound(name) }
            if reshapeOpenConnections { reshape(changed, from: before.shapers) }
            switch enabled {
            case true?: try await enable(changed)
            case false?: await disable(changed, dropConnections: dropConnections)
            case nil: break
            }
            return status(of: changed)
        }
    }

    /// Stops a service's listener and forgets it; `dropConnections` also closes its open
    /// connections, else they finish as they started.
    public func deleteService(_ name: String, dropConnections: Bool = false) async throws(ControlError) {
        try await change { () throws(ControlError) in
            guard let service = services[name] else { throw ControlError.serviceNotFound(name) }
            try await applyChecked(runningServices.map(\.spec).filter { $0.name != name })
            disabled[name] = nil
            if dropConnections { service.closeOpenConnections() }
        }
    }

    /// Back to the services cynic started with — the configuration file read again, the plugins'
    /// default services, or the command line's — all enabled; services created since are gone.
    public func resetToConfiguration() async throws(ControlError) -> [ServiceStatus] {
        try await change { () throws(ControlError) in
            let configuration: Configuration
            do throws(ServerError) {
                configuration = try readConfiguration()
            } catch {
                throw ControlError(.invalid, error.message)
            }
            try await applyChecked(configuration.services)
            for service in runningServices where disabled[service.spec.name] != nil {
                try await enable(service)
            }
            return serviceStatuses()
        }
    }

    /// toxiproxy's reset: every service `matching` enabled and without shapers.
    public func removeShapersAndEnable(where matching: @Sendable (ServiceSpec) -> Bool) async throws(ControlError) {
        try await change { () throws(ControlError) in
            let wanted = runningServices.map { service in
                var spec = service.spec
                if matching(spec) { spec.shapers = [] }
                return spec
            }
            let before = Dictionary(uniqueKeysWithValues: runningServices.map { ($0.spec.name, $0.spec.shapers) })
            try await applyChecked(wanted)
            for service in runningServices where matching(service.spec) {
                reshape(service, from: before[service.spec.name] ?? [])
            }
            for service in runningServices where matching(service.spec) && disabled[service.spec.name] != nil {
                try await enable(service)
            }
        }
    }

    /// Reads the plugin folders again, as the watcher does when a file changes: new and changed
    /// files are loaded (an unchanged file is not), files gone are retired.
    public func rescanPlugins() async -> PluginListing {
        // What changed is decided in the change's turn: a swap the watcher began meanwhile is
        // done by then, and its file no longer looks changed.
        await serializedChange {
            await installChanges(changedPluginFiles())
            return pluginListing()
        }
    }

    /// The plugin files new, rewritten or gone since the registry last looked.
    private func changedPluginFiles() -> [String] {
        var found: Set<String> = []
        for directory in directories {
            do {
                found.formUnion(try directory.pluginFiles())
            } catch {
                logger.warning("\(error)")
            }
        }
        return found.union(registry.knownFiles).sorted().filter { file in
            guard found.contains(file), let loaded = registry.plugin(providedBy: file)?.version,
                  let content = try? PluginFile.read(file, trust: trust) else { return true }
            return PluginCopies.version(of: content) != loaded
        }
    }

    // MARK: Helpers

    /// One change at a time (see `serializedChange`), its typed error carried across.
    private func change<T: Sendable>(_ body: () async throws(ControlError) -> T) async throws(ControlError) -> T {
        let result: Result<T, ControlError> = await serializedChange { () async -> Result<T, ControlError> in
            do throws(ControlError) {
                return .success(try await body())
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    /// `apply`, its refusal said as the API says it, its late failures logged.
    private func applyChecked(_ specs: [ServiceSpec]) async throws(ControlError) {
        let failures: [String]
        do {
            failures = try await apply(specs)
        } catch {
            throw ControlError(error)
        }
        for failure in failures { logger.error("\(failure)") }
    }

    /// Hands the open connections of `service` the difference between `old` shapers and its
    /// current ones: a shaper changed is removed and added anew.
    private func reshape(_ service: Service, from old: [ShaperSpec]) {
        let current = service.spec.shapers
        let removed = old.filter { shaper in !current.contains(shaper) }.map(\.name)
        let addedNames = current.filter { shaper in !old.contains(shaper) }.map(\.name)
        guard !removed.isEmpty || !addedNames.isEmpty else { return }
        let added = addedNames.compactMap { name in service.setup?.shapers.first { $0.name == name } }
        let asked = service.reshapeOpenConnections(removed: removed, added: added)
        if asked > 0 { logger.info("service \(service.spec.name): \(asked) open connection(s) reshaped (removed: \(removed), added: \(addedNames))") }
    }

    private func enable(_ service: Service) async throws(ControlError) {
        let name = service.spec.name
        guard let listen = disabled.removeValue(forKey: name) else { return }
        guard !service.isListening else { return }
        do {
            try await service.resume(with: try Service.makeSetup(service.spec, plugins: registry.current, tls: tls))
            logger.info("service \(name) enabled, listening on \(service.boundAddress)")
        } catch {
            disabled[name] = listen
            throw ControlError(error)
        }
    }

    private func disable(_ service: Service, dropConnections: Bool) async {
        let name = service.spec.name
        if disabled[name] == nil { disabled[name] = .some(service.listenSettings) }
        await service.suspend()
        if dropConnections { service.closeOpenConnections() }
        logger.info("service \(name) disabled: not accepting\(dropConnections ? ", its connections closed" : "; open connections go on")")
    }
}

/// A service as the control API shows it.
public struct ServiceStatus: Sendable {
    public let spec: ServiceSpec
    /// Where it listens, or last listened: port 0 shows the port the kernel chose.
    public let boundAddress: ServiceAddress
    /// Not turned off through the API.
    public let enabled: Bool
    /// Accepting now: enabled, and its behaviour loaded.
    public let listening: Bool
    public let openConnections: Int
    public let acceptedConnections: Int
    /// The version of the behaviour's current generation; nil while the behaviour is gone.
    public let behaviourVersion: String?
}

/// The plugins as the control API shows them.
public struct PluginListing: Sendable {
    public struct Entry: Sendable {
        public let plugin: Plugin
        /// The current generation first, then older ones still finishing connections.
        public let generations: [Generation]
    }

    /// One loaded version of a plugin.
    public struct Generation: Sendable {
        public let version: String
        public let file: String
        public let connections: Int
        public let current: Bool
    }

    public let plugins: [Entry]
    public let refused: [PluginRefusal]
}

/// A change the control API refused, with what was wrong and where.
public struct ControlError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable {
        /// A value that cannot be used (400).
        case invalid
        /// No such service (404).
        case notFound
        /// A name or address already taken (409).
        case conflict
    }

    public let kind: Kind
    public let message: String
    /// The field of the request at fault, when one is.
    public let field: String?

    public init(_ kind: Kind, _ message: String, field: String? = nil) {
        self.kind = kind
        self.message = message
        self.field = field
    }

    /// An API request's error says what is wrong in the request's own terms: the field, not the
    /// origin a file's error starts with.
    init(_ error: ServiceError) {
        self.init(error.addressInUse ? .conflict : .invalid, "service '\(error.service)': \(error.reason)", field: error.field)
    }

    static func serviceNotFound(_ name: String) -> ControlError {
        ControlError(.notFound, "service '\(name)' not found")
    }

    public var description: String { message }
}
