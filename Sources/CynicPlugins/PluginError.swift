/// Why a plugin file was refused at load time. The loader adds the file to the message.
public enum PluginError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The path is no file to load: missing, a dangling or looping link, a FIFO, a folder...
    case notAPluginFile(String)
    /// Someone other than cynic's user (or root) owns or could write the file or a folder above
    /// it: the reason, with the fix.
    case unsafePermissions(String)
    /// Not a shared object for this machine (checked before dlopen: a truncated one would crash
    /// the host), or dlopen failed: an undefined symbol...
    case notLoadable(String)
    /// The file has no `cynic_plugin_entry`.
    case noEntrySymbol
    /// The entry returned NULL.
    case nullDescriptor
    /// Built against an ABI this host does not know.
    case unsupportedABI(found: UInt32, supported: ClosedRange<UInt32>)
    /// The descriptor breaks a rule of the header.
    case invalidDescriptor(String)
    /// Another plugin already provides the behaviour.
    case duplicateName(String, firstFile: String)
    /// A new version that a running service cannot use (its parameters no longer fit).
    case unusableByService(String)
    /// This version crashed the worker it ran in (`--isolate`): what it was doing.
    case crashedWorker(String)

    public var description: String {
        switch self {
        case .notAPluginFile(let reason): reason
        case .unsafePermissions(let reason): reason
        case .notLoadable(let reason): "not a loadable shared object: \(reason)"
        case .noEntrySymbol: "no entry symbol \(Plugin.entrySymbol)"
        case .nullDescriptor: "\(Plugin.entrySymbol) returned NULL"
        case .unsupportedABI(let found, let supported):
            "ABI version \(found) instead of \(supported.lowerBound == supported.upperBound ? "\(supported.lowerBound)" : "\(supported.lowerBound) to \(supported.upperBound)")"
        case .invalidDescriptor(let reason): "invalid descriptor: \(reason)"
        case .duplicateName(let name, let firstFile): "behaviour '\(name)' is already provided by \(firstFile)"
        case .unusableByService(let reason): "a running service cannot use it: \(reason)"
        case .crashedWorker(let what): "this version crashed cynic's worker (\(what)); a new version of the file is loaded again"
        }
    }
}

/// A plugin file the loader refused, and why.
public struct PluginRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    public let file: String
    public let reason: PluginError

    public init(file: String, reason: PluginError) {
        self.file = file
        self.reason = reason
    }

    public var description: String { "refused plugin \(file): \(reason)" }
}
