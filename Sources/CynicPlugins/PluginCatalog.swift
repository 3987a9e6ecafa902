#if canImport(Glibc)
import Glibc
#endif

/// A folder to look for plugins in, and which of its files count.
public struct PluginDirectory: Sendable, Equatable {
    public let path: String
    /// The build folder beside cynic's own executable also holds other libraries: there only
    /// `libcynic-plugin-*.so` counts. In a user's plugin folder every `*.so` does.
    public let prefix: String

    public init(path: String, prefix: String = "") {
        self.path = path
        self.prefix = prefix
    }

    /// Where the plugins built with this executable are: its own folder.
    public static func builtIn() -> PluginDirectory? {
        guard let executable = realpath("/proc/self/exe", nil) else { return nil }
        defer { free(executable) }
        let path = String(cString: executable)
        guard let slash = path.lastIndex(of: "/") else { return nil }
        return PluginDirectory(path: String(path[..<slash]), prefix: "libcynic-plugin-")
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

    /// Loads every plugin of `directories`, in order. A refused file never stops the others; two
    /// plugins with one name: the first found keeps it.
    public static func load(_ directories: [PluginDirectory]) throws(PluginDirectoryError) -> PluginCatalog {
        var catalog = PluginCatalog()
        for directory in directories {
            for file in try directory.pluginFiles() {
                catalog.add(file: file)
            }
        }
        return catalog
    }

    public mutating func add(file: String) {
        do {
            let plugin = try Plugin.load(file: file)
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
