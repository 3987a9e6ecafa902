import CynicPlugins

/// The plugin generations that crashed a worker under `--isolate`, which the next worker refuses:
/// a plugin that dereferences NULL for every connection must not take every other service down
/// again at each one. A generation is a file and its content's hash, so a new version dropped in
/// loads again as any hot swap does.
public struct PluginQuarantine: Sendable, Equatable, Codable {
    public struct Entry: Sendable, Equatable, Hashable, Codable {
        /// The behaviour's (or shaper's) name.
        public let plugin: String
        public let file: String
        public let version: String
        /// What it did: "SIGSEGV in conn_open, service crashy".
        public let crash: String

        public init(plugin: String, file: String, version: String, crash: String) {
            self.plugin = plugin
            self.file = file
            self.version = version
            self.crash = crash
        }
    }

    public private(set) var entries: [Entry] = []

    public init(_ entries: [Entry] = []) {
        self.entries = entries
    }

    /// Adds a generation; false when it was quarantined already.
    @discardableResult
    public mutating func add(_ entry: Entry) -> Bool {
        guard !entries.contains(where: { $0.file == entry.file && $0.version == entry.version }) else { return false }
        entries.append(entry)
        return true
    }

    /// The refusal of `plugin`, when its generation is quarantined.
    func refusal(of plugin: Plugin) -> PluginRefusal? {
        guard let version = plugin.version,
              let entry = entries.first(where: { $0.file == plugin.file && $0.version == version }) else { return nil }
        return PluginRefusal(file: plugin.file, reason: .crashedWorker(entry.crash))
    }
}
