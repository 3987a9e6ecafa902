import CCynicPlugin
import CFFI
import CynicPlugins
import Logging
import Synchronization

/// The `cynic_host` one loaded plugin image gets: `HostTable`'s functions, except `log`, which
/// is a C function of this table's own, so a line logged without a connection names its plugin.
///
/// Why a function of its own: `log(NULL, level, message)` — from `create`, or from a thread the
/// plugin started — receives nothing that says who calls, neither the table nor a connection,
/// and a C function pointer cannot capture anything. The caller can only be told apart by which
/// function it calls. A libffi closure is such a function, made at run time: a real C function
/// pointer bound to a pointer of ours (this object), which its handler gets back on every call,
/// from any thread. (A pool of compiled trampolines, one per slot, would work too, but would cap
/// the generations a long session of hot swaps may load; closures come and go with them.) Other
/// ways fail: a "current plugin" variable set around `create` is wrong for the plugin's own
/// threads, and the message pointer says nothing of where it came from.
final class PluginHostTable: @unchecked Sendable {
    // @unchecked: every stored property is written once in init; the table and the closure
    // are read by plugins and libffi only.

    /// What `create` is given.
    let pointer: UnsafePointer<cynic_host>
    /// Lines logged through this table without a connection go here, with `plugin=NAME`.
    let logger: Logger
    /// The closure's writable half, to free; nil when none could be made, and the table then
    /// logs through `HostTable`'s shared `log`, without the plugin's name.
    private let closure: UnsafeMutableRawPointer?

    init(plugin name: String, logger base: Logger) {
        var logger = base
        logger[metadataKey: "plugin"] = "\(name)"
        self.logger = logger
        let table = UnsafeMutablePointer<cynic_host>.allocate(capacity: 1)
        table.initialize(to: HostTable.pointer.pointee)
        pointer = UnsafePointer(table)
        var code: UnsafeMutableRawPointer?
        closure = ffi_closure_alloc(cynic_ffi_closure_size(), &code)
        guard let closure, let code,
              ffi_prep_closure_loc(closure.assumingMemoryBound(to: ffi_closure.self), Self.logInterface, Self.logEntry,
                                   Unmanaged.passUnretained(self).toOpaque(), code) == FFI_OK else {
            base.warning("plugin \(name): no log function of its own could be made; its lines without a connection will not name it")
            return
        }
        table.pointee.log = unsafeBitCast(code, to: (@convention(c) (OpaquePointer?, UInt32, UnsafePointer<CChar>?) -> Void).self)
    }

    deinit {
        if let closure { ffi_closure_free(closure) }
        UnsafeMutablePointer(mutating: pointer).deallocate()
    }

    /// `void log(cynic_conn *, uint32_t, const char *)`, as libffi describes it: prepared once,
    /// shared by every closure (libffi only reads it).
    nonisolated(unsafe) private static let logInterface: UnsafeMutablePointer<ffi_cif> = {
        let arguments = UnsafeMutablePointer<UnsafeMutablePointer<ffi_type>?>.allocate(capacity: 3)
        arguments[0] = cynic_ffi_type_pointer()
        arguments[1] = cynic_ffi_type_uint32()
        arguments[2] = cynic_ffi_type_pointer()
        let interface = UnsafeMutablePointer<ffi_cif>.allocate(capacity: 1)
        let status = ffi_prep_cif(interface, FFI_DEFAULT_ABI, 3, cynic_ffi_type_void(), arguments)
        // Only a bad ABI or type description fails, and both are fixed above.
        precondition(status == FFI_OK, "ffi_prep_cif failed with \(status)")
        return interface
    }()

    /// What every closure runs: the arguments arrive as pointers to their values, and `owner` is
    /// the table whose closure was called.
    private static let logEntry: @convention(c) (UnsafeMutablePointer<ffi_cif>?, UnsafeMutableRawPointer?,
                                                 UnsafeMutablePointer<UnsafeMutableRawPointer?>?, UnsafeMutableRawPointer?) -> Void = {
        _, _, arguments, owner in
        guard let arguments, let owner else { return }
        let conn = arguments[0]!.load(as: OpaquePointer?.self)
        let level = arguments[1]!.load(as: UInt32.self)
        let message = arguments[2]!.load(as: UnsafePointer<CChar>?.self)
        let table = Unmanaged<PluginHostTable>.fromOpaque(owner).takeUnretainedValue()
        HostTable.log(conn, level, message, withoutConnection: table.logger)
    }
}

/// One `PluginHostTable` per loaded plugin image, made when its first instance is created (the
/// plugin cannot reach the host before `create`), the same for every instance of it.
///
/// A table lives as long as the image may call it. The header lets a plugin keep the pointer,
/// in a static variable or a thread of its own. An image that is unloaded (a C plugin no longer
/// used) takes those with it, so its table is freed once every `Plugin` of the image is gone; an
/// image that stays mapped (one that links the Swift runtime) keeps its table until the process
/// exits, since its threads and statics do.
final class PluginHostTables: Sendable {
    /// The tables of the plugins cynic serves; lines go to the `cynic.plugin` logger.
    static let shared = PluginHostTables(logger: HostTable.pluginLogger)

    private struct Entry {
        let imageID: UInt
        let staysMapped: Bool
        let table: PluginHostTable
        /// Every `Plugin` loaded from the image: the same content loaded twice shares one.
        var holders: [WeakPlugin]

        var isUnloaded: Bool { !staysMapped && holders.allSatisfy { $0.plugin == nil } }
    }

    private struct WeakPlugin {
        weak var plugin: Plugin?
    }

    private let logger: Logger
    private let entries = Mutex<[Entry]>([])

    /// `logger` is where each table's lines without a connection go, with `plugin=NAME` added.
    init(logger: Logger) {
        self.logger = logger
    }

    /// The table for `plugin`'s image: made on first use, then the same one.
    func table(for plugin: Plugin) -> UnsafePointer<cynic_host> {
        entries.withLock { entries in
            // Before the lookup: an image unloaded and loaded again may get its old handle back.
            entries.removeAll(where: \.isUnloaded)
            if let index = entries.firstIndex(where: { $0.imageID == plugin.imageID }) {
                if !entries[index].holders.contains(where: { $0.plugin === plugin }) {
                    entries[index].holders.append(WeakPlugin(plugin: plugin))
                }
                return entries[index].table.pointer
            }
            let table = PluginHostTable(plugin: plugin.name, logger: logger)
            entries.append(Entry(imageID: plugin.imageID, staysMapped: plugin.staysMapped, table: table,
                                 holders: [WeakPlugin(plugin: plugin)]))
            return table.pointer
        }
    }

    /// Tables alive now, unloaded images' included until the next lookup frees them.
    var count: Int { entries.withLock { $0.count } }
}
