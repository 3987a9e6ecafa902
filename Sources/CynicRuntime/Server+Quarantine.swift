import CynicConfig
import CynicPlugins
import Logging

/// Under `--isolate`, a worker started after a crash refuses the plugin generation that crashed
/// its predecessor (`PluginQuarantine`). The services that use it wait, not listening, until a
/// new version of the file is installed; every other service starts as usual.
extension Server {
    /// Generations to refuse from now on; before `start()`.
    public func quarantine(_ quarantine: PluginQuarantine) {
        registry.quarantine = quarantine
    }

    /// The specs to start now: those whose plugins were refused as quarantined are held back,
    /// with one line each.
    func holdingBackQuarantined(_ specs: [ServiceSpec]) -> [ServiceSpec] {
        let refused = Set(registry.sortedRefusals.compactMap { refusal -> String? in
            guard case .crashedWorker = refusal.reason else { return nil }
            return refusal.file
        })
        guard !refused.isEmpty else { return specs }
        let quarantinedNames = Set(registry.quarantine.entries.filter { refused.contains($0.file) }.map(\.plugin))
        return specs.filter { spec in
            guard let name = quarantinedNames.first(where: { spec.uses($0) }) else { return true }
            let already = heldBack.contains { $0.name == spec.name }
            heldBack.removeAll { $0.name == spec.name }
            heldBack.append(spec)
            if !already { logger.warning("service \(spec.name) not started: plugin \(name) crashed the worker; it starts when a new version of the plugin is installed") }
            return false
        }
    }

    /// Starts the held-back services whose plugins are all loaded now (a new version came).
    func startHeldBackServices() async {
        guard !heldBack.isEmpty else { return }
        var waiting: [ServiceSpec] = []
        // A plugin's default service may have started first, under the same name.
        for spec in heldBack where services[spec.name] == nil {
            let needed = [spec.behaviour] + spec.shapers.map(\.shaper)
            guard needed.allSatisfy({ registry.current[$0] != nil }) else {
                waiting.append(spec)
                continue
            }
            await startWhileServing(spec)
        }
        heldBack = waiting
    }
}
