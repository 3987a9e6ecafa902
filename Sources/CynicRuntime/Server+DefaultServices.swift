import CynicConfig
import CynicPlugins
import Logging

/// Default services: in the default set-up (`cynic` with no configuration) a plugin with a
/// default port brings its own service, at start and when it is dropped in later.
extension Server {
    /// Starts the service `plugin` brings, if it brings one now.
    func startDefaultService(of plugin: Plugin) async {
        guard let spec = source.defaultService(of: plugin, running: { services[$0] != nil }) else { return }
        await startWhileServing(spec)
    }

    /// Starts a service outside any change of the list (a plugin that came brings it): one line
    /// saying where it listens, or one saying why it cannot.
    func startWhileServing(_ spec: ServiceSpec) async {
        do {
            let service = try await Service.start(spec, plugins: registry.current, group: group, logger: logger,
                                                  queuedBytes: queuedBytes, events: events, tls: tls, limits: limits)
            services.add(service)
            logger.info("service \(spec.name): behaviour \(spec.behaviour), listening on \(service.boundAddress)")
        } catch {
            logger.error("\(error)")
        }
    }
}

extension Server.ServiceSource {
    /// The service a plugin brings of its own: with `.pluginDefaults` only, when it has a default
    /// port and no service runs under its name (a service a user started is never replaced).
    func defaultService(of plugin: Plugin, running isRunning: (String) -> Bool) -> ServiceSpec? {
        guard case .pluginDefaults = self, !isRunning(plugin.name) else { return nil }
        return Configuration.defaults(for: [plugin]).services.first
    }
}
