import CynicConfig
import CynicPlugins
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// Hot swap: plugin files found at start, then every change to them while the server serves.
///
/// A new version of a plugin is loaded from a private copy and checked completely — descriptor,
/// and the parameters of every service that uses it — before it takes a connection; then new
/// connections go to it while the old generation finishes those it holds, and is unloaded (a C
/// image) once the last one ends. A version that fails leaves the old one serving. What a new
/// generation or a removal means is the registry's decision; here it is carried out.
extension Server {
    /// Called with the plugin files that changed on disk: appeared, rewritten or removed.
    ///
    /// A swap is a change to the services like a reload or an API call, and waits its turn with
    /// them (`serializedChange`): it awaits as it resumes and starts services, and two swaps, or
    /// a swap and an API change, interleaved there would leave a service on the generation of
    /// whichever finished last, or bind one name twice.
    public func pluginFilesChanged(_ files: [String]) async {
        await serializedChange { await installChanges(files) }
    }

    /// `pluginFilesChanged`, inside a change already under way (a rescan asked for by the API).
    func installChanges(_ files: [String]) async {
        for file in files {
            // Whatever has the name is installed or refused with its reason: a dangling link or
            // a FIFO named `x.so` gets its "refused" line, not silence.
            if Self.nameExists(file) {
                await install(file)
            } else {
                await retire(file: file)
            }
        }
        registry.forgetUnloaded()
    }

    /// A plugin file found at start: loaded, or refused with one line.
    func loadAtStart(_ file: String) {
        do throws(PluginRefusal) {
            let plugin = try Plugin.load(file: file, copies: copies, trust: trust)
            try registry.addAtStart(plugin)
            metrics?.pluginLoaded(plugin.name)
        } catch {
            registry.refuse(error)
            metrics?.pluginRefused()
            logger.warning("\(error)")
        }
    }

    /// A new or rewritten file: load its new generation, check it against every service that
    /// will use it, then swap.
    private func install(_ file: String) async {
        let kept = registry.plugin(providedBy: file).map { "; version \($0.versionLabel) keeps serving" } ?? ""
        let plugin: Plugin
        let previous: Plugin?
        do throws(PluginRefusal) {
            plugin = try Plugin.load(file: file, copies: copies, trust: trust)
            switch registry.admission(of: plugin) {
            case .refused(let refusal): throw refusal
            case .unchanged: return
            case .new(let replacing): previous = replacing
            }
        } catch {
            registry.refuse(error)
            metrics?.pluginRefused()
            logger.error("\(error)\(kept)")
            return
        }
        // Every service that will use the new generation gets its instance now: a parameter the
        // new version refuses refuses the version, before anything changes.
        var setups: [(Service, ServiceSetup)] = []
        for service in runningServices where service.spec.uses(plugin.name) {
            do {
                setups.append((service, try Service.makeSetup(service.spec, plugins: registry.current.merging([plugin.name: plugin]) { $1 }, tls: tls)))
            } catch {
                let refusal = PluginRefusal(file: file, reason: .unusableByService(error.description))
                registry.refuse(refusal)
                metrics?.pluginRefused()
                logger.error("\(refusal) (version \(plugin.versionLabel))\(kept)")
                return
            }
        }
        if let previous, previous.name != plugin.name {
            // The file was rewritten as another behaviour: the one it provided is gone.
            await retire(file: file)
        }
        if let replaced = registry.install(plugin) {
            metrics?.pluginSwapped(plugin.name)
            logger.info("swapped \(plugin.name): version \(replaced.versionLabel) → \(plugin.versionLabel) (\(file)); \(replaced.connections.current) connection(s) stay on \(replaced.versionLabel)")
        } else {
            metrics?.pluginLoaded(plugin.name)
            logger.info("loaded \(plugin.name) version \(plugin.versionLabel) (\(file))")
        }
        for (service, setup) in setups {
            if service.isListening || disabled[service.spec.name] != nil {
                // A disabled service takes the new generation when it is enabled again.
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
        await startHeldBackServices()
    }

    /// A removed file: its behaviour's services stop accepting until it comes back.
    private func retire(file: String) async {
        guard let plugin = registry.remove(file: file) else { return }
        let name = plugin.name
        logger.warning("behaviour \(name) removed (\(file)); \(plugin.connections.current) connection(s) stay on version \(plugin.versionLabel)")
        for service in runningServices where service.isListening && service.spec.uses(name) {
            await service.suspend()
            logger.warning("service \(service.spec.name) stopped accepting: behaviour \(name) is gone")
        }
    }

    private static func nameExists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }
}
