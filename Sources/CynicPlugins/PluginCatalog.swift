#if canImport(Glibc)
import Glibc
#endif

/// A folder to look for plugins in, and which of its files count.
public struct PluginDirectory: Sendable, Equatable {
    public let path: String
    /// The build folder beside cynic's own executable also holds other libraries: there only
    /// `libcynic-plugin-*.so` counts. In a user's plugin folder every `*.so` does.
    public let prefix: String
    /// Why it is searched, for `cynic plugins`: "built with cynic", "--plugin-dir"...
    public let origin: String

    public init(path: String, prefix: String = "", origin: String = "--plugin-dir") {
        self.path = path
        self.prefix = prefix
        self.origin = origin
    }

    /// Where the plugins that came with this executable are: for an installed cynic
    /// (`PREFIX/bin/cynic`), `PREFIX/lib/cynic/plugins`; in a build folder, the folder itself.
    public static func builtIn() -> PluginDirectory? {
        guard let executable = realpath("/proc/self/exe", nil) else { return nil }
        defer { free(executable) }
        let path = String(cString: executable)
        guard let slash = path.lastIndex(of: "/") else { return nil }
        let folder = String(path[..<slash])
        if folder.hasSuffix("/bin") {
            let installed = String(folder.dropLast(4)) + "/lib/cynic/plugins"
            if isFolder(installed) { return PluginDirectory(path: installed, origin: "installed with cynic") }
        }
        return PluginDirectory(path: folder, prefix: "libcynic-plugin-", origin: "built with cynic")
    }

    /// Where cynic looks when told nothing, in this order (the first plugin found with a name
    /// keeps it): the plugins that came with cynic; `~/.local/lib/cynic/plugins`; each folder of
    /// `CYNIC_PLUGIN_PATH` (colon-separated). Folders that do not exist are skipped; each
    /// `--plugin-dir` comes after these.
    public static func defaultSearchPath(environment: [String: String]) -> [PluginDirectory] {
        var path = builtIn().map { [$0] } ?? []
        if let home = environment["HOME"], !home.isEmpty {
            let user = home + "/.local/lib/cynic/plugins"
            if isFolder(user) { path.append(PluginDirectory(path: user, origin: "~/.local/lib/cynic/plugins")) }
        }
        for folder in (environment["CYNIC_PLUGIN_PATH"] ?? "").split(separator: ":").map(String.init)
        where !folder.isEmpty && isFolder(folder) {
            path.append(PluginDirectory(path: folder, origin: "CYNIC_PLUGIN_PATH"))
        }
        return path
    }

    public static func isFolder(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR
    }

    /// The plugin files in the folder, sorted so that loading order (and so which of two plugins
    /// with one name wins) does not depend on the file system.
    public func pluginFiles() throws(PluginDirectoryError) -> [String] {
        guard let dir = opendir(path) else {
            throw PluginDirectoryError(path: path, reason: String(cString: strerror(errno)))
        }
        defer { closedir(dir) }
        var files: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
            guard name.hasPrefix(prefix), name.hasSuffix(".so"), !name.hasPrefix(".") else { continue }
            files.append(path + "/" + name)
        }
        return files.sorted()
    }
}

public struct PluginDirectoryError: Error, Sendable, CustomStringConvertible {
    public let path: String
    public let reason: String
    public var description: String { "cannot read plugin folder \(path): \(reason)" }
}

/// Every behaviour found in a list of folders, and every file refused with its reason.
public struct PluginCatalog: Sendable {
    public private(set) var plugins: [String: Plugin] = [:]
    public private(set) var refusals: [PluginRefusal] = []

    public init() {}

    /// Loads every plugin of `directories`, in order, each from a private copy of this process
    /// (see `PluginCopies.forThisProcess()`). A refused file never stops the others; two plugins
    /// with one name: the first found keeps it.
    public static func load(_ directories: [PluginDirectory], trust: PluginTrust = .ownerOnly) throws(PluginDirectoryError) -> PluginCatalog {
        var catalog = PluginCatalog()
        for directory in directories {
            for file in try directory.pluginFiles() {
                catalog.add(file: file, trust: trust)
            }
        }
        return catalog
    }

    public mutating func add(file: String, trust: PluginTrust = .ownerOnly) {
        do {
            let plugin = try Plugin.load(file: file, trust: trust)
            if let existing = plugins[plugin.name] {
                refusals.append(PluginRefusal(file: file, reason: .duplicateName(plugin.name, firstFile: existing.file)))
            } else {
                plugins[plugin.name] = plugin
            }
        } catch {
            refusals.append(error)
        }
    }

    /// Sorted by name, for listings.
    public var sortedPlugins: [Plugin] { plugins.values.sorted { $0.name < $1.name } }
}
