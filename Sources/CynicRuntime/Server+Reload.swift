import CynicConfig
import CynicPlugins
import Logging

/// Configuration reload (SIGHUP): reading the file, planning (`ReloadPlan`), binding every new
/// listener, then committing.
extension Server {
    /// The configuration the server starts with.
    func readConfiguration() throws(ServerError) -> Configuration {
        switch source {
        case .pluginDefaults:
            return Configuration.defaults(for: Array(registry.current.values))
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
        await serializedChange {
            let configuration: Configuration
            do {
                configuration = try Configuration.read(file: path)
            } catch {
                logger.error("configuration reload refused, nothing changed: \(error)")
                return
            }
            do {
                let failures = try await apply(configuration.services)
                if failures.isEmpty {
                    logger.info("configuration reloaded from \(path)")
                } else {
                    logger.error("configuration reloaded from \(path), except: \(failures.joined(separator: "; "))")
                }
            } catch {
                logger.error("configuration reload refused, nothing changed: \(error)")
            }
        }
    }

    /// Makes the running services `specs`, in their order, as a reload does (see
    /// `reloadConfiguration`): every spec checked and every new listener bound before anything
    /// changes, so an error changes nothing. Returns what failed after the commit: a listener
    /// that had to be made anew and could not (see `Service.rebind`).
    func apply(_ specs: [ServiceSpec]) async throws(ServiceError) -> [String] {
        var setups: [String: ServiceSetup] = [:]
        for spec in specs where !(services[spec.name]?.spec.sameService(as: spec) ?? false) {
            setups[spec.name] = try Service.makeSetup(spec, plugins: registry.current, tls: tls)
        }
        let plan = ReloadPlan(
            running: runningServices.map { service in
                // A disabled service keeps its address and settings for when it is enabled again.
                ReloadPlan.Running(spec: service.spec, listen: service.listenSettings ?? disabled[service.spec.name] ?? nil)
            },
            wanted: specs.map { spec in
                ReloadPlan.Wanted(spec: spec, listen: setups[spec.name].map { ListenSettings($0.behaviour.listen) } ?? ListenSettings())
            })
        // Bound, not yet accepting: the old services serve on until every one of these is bound.
        // The actor is re-entered at these awaits, but no other change runs before this one is
        // done (`serializedChange`), a hot swap included: the generations in `setups` stay current.
        var bound: [String: Service] = [:]
        for case .listen(let spec) in plan.steps {
            do {
                bound[spec.name] = try await Service.bindWithoutAccepting(spec, setup: setups[spec.name]!, group: group, logger: logger,
                                                                          queuedBytes: queuedBytes, events: events,
                                                                          limits: limits)
            } catch {
                for service in bound.values { await service.stop() }
                throw error
            }
        }
        let failures = await commit(plan, setups: setups, bound: bound)
        // A disabled service that a change handed a new spec stays disabled.
        for name in Array(disabled.keys) {
            guard let service = services[name] else {
                disabled[name] = nil
                continue
            }
            if service.isListening { await service.suspend() }
        }
        return failures
    }

    /// Performs a checked plan whose new listeners are all bound.
    private func commit(_ plan: ReloadPlan, setups: [String: ServiceSetup], bound: [String: Service]) async -> [String] {
        var next = ServiceList()
        for name in plan.removed {
            await services[name]?.stop()
            logger.info("service \(name) removed")
        }
        var rebinds: [(Service, ServiceSpec)] = []
        for step in plan.steps {
            switch step {
            case .keep(let name):
                if let service = services[name] { next.add(service) }
            case .handOver(let from, let spec):
                let service = services[from]!
                service.handOver(to: spec, setup: setups[spec.name]!)
                next.add(service)
                let origin = from == spec.name ? "changed" : "taking over the listener of \(from)"
                logger.info("service \(spec.name): behaviour \(spec.behaviour), listening on \(service.boundAddress) (\(origin); open connections finish as they started)")
            case .rebind(let from, let spec):
                let service = services[from]!
                // Listed under its new spec's name before the rebind hands the spec over.
                next.add(service, as: spec.name)
                rebinds.append((service, spec))
            case .listen(let spec):
                let service = bound[spec.name]!
                service.startAccepting()
                next.add(service)
                logger.info("service \(spec.name): behaviour \(spec.behaviour), listening on \(service.boundAddress)")
                warnIfBeyondLoopback(service)
            }
        }
        services = next
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
        return failures
    }
}
