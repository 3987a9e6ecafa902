import CynicPlugins

/// The plugins a server serves, and the rules about them: the current generation of each
/// behaviour, which file provides it, every file refused with its reason, and the older
/// generations still finishing their connections.
///
/// A value with no socket and no service in it: the server loads files and runs services, asks
/// the registry what a new generation or a removal means, and acts on the answer.
struct PluginRegistry {
    /// What a newly loaded generation of a file would be, were it installed.
    enum Admission {
        /// Another file provides the name already: the first one found keeps it.
        case refused(PluginRefusal)
        /// The same bytes as the generation the file provides now: nothing to do.
        case unchanged
        /// A new generation. `previous` is what its file provided until now — an older
        /// generation of the same behaviour, or another behaviour the file was rewritten from —
        /// or nil for a file new to the registry.
        case new(previous: Plugin?)
    }

    /// The current generation of each behaviour.
    private(set) var current: [String: Plugin] = [:]
    /// Which behaviour each plugin file provides now.
    private var behaviourOfFile: [String: String] = [:]
    private var refusals: [String: PluginRefusal] = [:]
    /// Earlier generations, watched without being kept alive: a C image is unloaded as soon as
    /// its last connection ends, and only then leaves this list (`forgetUnloaded`).
    private var retired: [WeakPlugin] = []
    /// Generations that crashed a worker (`--isolate`): refused like any file that fails to load.
    var quarantine = PluginQuarantine()

    /// The generation `file` provides now, if any.
    func plugin(providedBy file: String) -> Plugin? {
        behaviourOfFile[file].flatMap { current[$0] }
    }

    /// Every file the registry knows of: those providing a behaviour and those refused.
    var knownFiles: Set<String> { Set(behaviourOfFile.keys).union(refusals.keys) }

    /// Refusals, by file name, for listings.
    var sortedRefusals: [PluginRefusal] { refusals.values.sorted { $0.file < $1.file } }

    // MARK: At start

    /// A plugin found at start: the first file found with a name keeps it, so a later one is
    /// refused, whatever its version (the caller records the refusal with `refuse`, as it does
    /// those of files that did not load).
    mutating func addAtStart(_ plugin: Plugin) throws(PluginRefusal) {
        if let refusal = quarantine.refusal(of: plugin) { throw refusal }
        if let existing = current[plugin.name] {
            throw PluginRefusal(file: plugin.file, reason: .duplicateName(plugin.name, firstFile: existing.file))
        }
        current[plugin.name] = plugin
        behaviourOfFile[plugin.file] = plugin.name
    }

    // MARK: While serving

    /// What installing `plugin`, just loaded from its file, would mean. Decides nothing about
    /// services: a new generation is still checked against each service that would use it.
    func admission(of loaded: Plugin) -> Admission {
        if let refusal = quarantine.refusal(of: loaded) { return .refused(refusal) }
        if let owner = current[loaded.name], owner.file != loaded.file {
            return .refused(PluginRefusal(file: loaded.file, reason: .duplicateName(loaded.name, firstFile: owner.file)))
        }
        let previous = plugin(providedBy: loaded.file)
        if let previous, previous.name == loaded.name, previous.version == loaded.version {
            return .unchanged  // rewritten with the same bytes
        }
        return .new(previous: previous)
    }

    /// The file's latest version is refused; the generation it provided, if any, serves on.
    mutating func refuse(_ refusal: PluginRefusal) {
        refusals[refusal.file] = refusal
    }

    /// Makes `plugin` the current generation of its behaviour, from its file. A file that provided
    /// another behaviour until now must have been removed first (`remove(file:)`). Returns the
    /// generation it replaces, now retired, or nil when the behaviour is new.
    mutating func install(_ plugin: Plugin) -> Plugin? {
        refusals[plugin.file] = nil
        let replaced = current.updateValue(plugin, forKey: plugin.name)
        behaviourOfFile[plugin.file] = plugin.name
        if let replaced { retired.append(WeakPlugin(plugin: replaced)) }
        return replaced
    }

    /// A file that is gone, or rewritten as another behaviour: the behaviour it provided is
    /// removed (its generation retired, finishing the connections it holds) and returned; the
    /// file's refusal, if any, is forgotten with it.
    mutating func remove(file: String) -> Plugin? {
        refusals[file] = nil
        guard let name = behaviourOfFile.removeValue(forKey: file), let plugin = current.removeValue(forKey: name) else {
            return nil
        }
        retired.append(WeakPlugin(plugin: plugin))
        return plugin
    }

    /// Drops the retired generations that have been unloaded.
    mutating func forgetUnloaded() {
        retired.removeAll { $0.plugin == nil }
    }

    // MARK: Status

    /// Every live generation, for the status report: each behaviour's current one with the older
    /// ones still holding connections, then the generations of behaviours removed.
    var generations: [StatusReport.Behaviour] {
        let older = retired.compactMap(\.plugin)
        var behaviours = current.values.sorted { $0.name < $1.name }.map { plugin in
            StatusReport.Behaviour(name: plugin.name, current: StatusReport.Generation(plugin), removed: false,
                                   older: older.filter { $0.name == plugin.name && $0 !== plugin }.map(StatusReport.Generation.init))
        }
        for old in older where current[old.name] == nil {
            behaviours.append(StatusReport.Behaviour(name: old.name, current: StatusReport.Generation(old), removed: true, older: []))
        }
        return behaviours
    }
}

private struct WeakPlugin {
    weak var plugin: Plugin?
}

extension Plugin {
    public var versionLabel: String { version.map { String($0.prefix(12)) } ?? "unversioned" }
}
