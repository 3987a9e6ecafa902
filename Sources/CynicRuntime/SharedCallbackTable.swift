import CIsolation
import CynicPlugins
#if canImport(Glibc)
import Glibc
#endif

/// The callback slots and their labels, in memory a worker shares with its supervisor
/// (`--isolate`): the worker's threads write what they call into it as they always do
/// (`CallbackSlot`), and when the worker dies the supervisor reads which plugin, which callback
/// and which service the crashing thread was in.
///
/// One writer process; the reader looks only once the writer is dead, so only the slot words,
/// which the worker's own watchdog also reads, need atomics. The layout is this file's alone:
///
///     header   64 bytes: magic, crashing thread id, slots used, labels used
///     slots    slotCapacity × 64 bytes: sequence, running word, thread id, thread name (40)
///     labels   labelCapacity × labelSize bytes: length (4), "plugin\tfile\tversion\tservice"
public final class SharedCallbackTable: @unchecked Sendable {
    // @unchecked: the mapping lives as long as the object, and the process never unmaps it while
    // a slot may be written (the worker keeps its table until it exits). Slots and labels are
    // added under CallbackRegistry's locks, so one at a time.

    /// What a label stands for: a plugin's generation in a service.
    public struct Label: Equatable, Sendable {
        public let plugin: String
        public let file: String
        /// The content hash of the generation (`Plugin.version`); empty when unknown.
        public let version: String
        public let service: String

        public init(plugin: String, file: String, version: String, service: String) {
            self.plugin = plugin
            self.file = file
            self.version = version
            self.service = service
        }
    }

    /// The call a thread was in when the worker died.
    public struct Crash: Equatable, Sendable {
        public let label: Label?
        public let callback: PluginCallback
        public let threadName: String
        /// False when no thread noted the crash (the worker was killed): `label` is then only
        /// the one call that was running.
        public let noted: Bool
    }

    public static let slotCapacity = 256
    public static let labelCapacity = 2048
    static let headerSize = 64
    static let slotSize = 64
    static let labelSize = 512
    static let magic: UInt64 = 0x4359_4E49_4353_4C54  // "CYNICSLT"

    public static var size: Int { headerSize + slotCapacity * slotSize + labelCapacity * labelSize }

    private let base: UnsafeMutableRawPointer
    public let descriptor: Int32

    /// A new, zeroed table in a memfd, for a worker about to start.
    public static func create() throws(SharedTableError) -> SharedCallbackTable {
        let descriptor = cynic_memfd("cynic-callback-slots")
        guard descriptor >= 0 else { throw SharedTableError("memfd_create: \(String(cString: strerror(errno)))") }
        guard ftruncate(descriptor, off_t(size)) == 0 else {
            let reason = String(cString: strerror(errno))
            close(descriptor)
            throw SharedTableError("cannot size the shared callback table: \(reason)")
        }
        let table = try SharedCallbackTable(mapping: descriptor)
        table.base.storeBytes(of: magic, as: UInt64.self)
        return table
    }

    /// Maps a table made by `create()`, received from the supervisor. Takes `descriptor`.
    public init(mapping descriptor: Int32) throws(SharedTableError) {
        var status = stat()
        guard fstat(descriptor, &status) == 0, Int(status.st_size) == Self.size else {
            close(descriptor)
            throw SharedTableError("the shared callback table has the wrong size")
        }
        guard let mapped = mmap(nil, Self.size, PROT_READ | PROT_WRITE, MAP_SHARED, descriptor, 0),
              mapped != UnsafeMutableRawPointer(bitPattern: -1) else {
            let reason = String(cString: strerror(errno))
            close(descriptor)
            throw SharedTableError("cannot map the shared callback table: \(reason)")
        }
        base = mapped
        self.descriptor = descriptor
    }

    deinit {
        munmap(base, Self.size)
        close(descriptor)
    }

    private func word(_ offset: Int) -> UnsafeMutablePointer<UInt64> {
        (base + offset).assumingMemoryBound(to: UInt64.self)
    }

    /// Where the crash handler stores the crashing thread's id.
    public var crashingThreadWord: UnsafeMutablePointer<UInt64> { word(8) }
    private var slotsUsed: Int { Int(cynic_load_relaxed(word(16))) }
    private var labelsUsed: Int { Int(cynic_load_relaxed(word(24))) }

    /// From now on a crash signal notes its thread here (see `cynic_note_crashing_thread`).
    public func noteCrashes() {
        cynic_note_crashing_thread(crashingThreadWord)
    }

    // MARK: Writing (the worker)

    /// The two words of a new slot, or nil when the table is full (the slot then stays private).
    func addSlot(threadName: String, threadID: Int32) -> UnsafeMutablePointer<UInt64>? {
        let index = slotsUsed
        guard index < Self.slotCapacity, threadID > 0 else { return nil }
        let slot = Self.headerSize + index * Self.slotSize
        cynic_store_relaxed(word(slot + 16), UInt64(threadID))
        let name = Array(threadName.utf8.prefix(Self.slotSize - 25))
        (base + slot + 24).copyMemory(from: name, byteCount: name.count)
        cynic_store_relaxed(word(16), UInt64(index + 1))
        return word(slot)
    }

    /// Writes label `index`; past the capacity it is not written and reads as unknown.
    func addLabel(_ index: UInt32, _ label: Label) {
        guard Int(index) < Self.labelCapacity else { return }
        let text = Array("\(label.plugin)\t\(label.file)\t\(label.version)\t\(label.service)".utf8.prefix(Self.labelSize - 4))
        let offset = labelsOffset + Int(index) * Self.labelSize
        (base + offset + 4).copyMemory(from: text, byteCount: text.count)
        (base + offset).storeBytes(of: UInt32(text.count), as: UInt32.self)
        if Int(index) >= labelsUsed { cynic_store_relaxed(word(24), UInt64(index + 1)) }
    }

    private var labelsOffset: Int { Self.headerSize + Self.slotCapacity * Self.slotSize }

    // MARK: Reading (the supervisor, after the worker died)

    /// The label at `index`, if it was written.
    public func label(_ index: UInt32) -> Label? {
        guard Int(index) < min(labelsUsed, Self.labelCapacity) else { return nil }
        let offset = labelsOffset + Int(index) * Self.labelSize
        let length = Int(base.load(fromByteOffset: offset, as: UInt32.self))
        guard length > 0, length <= Self.labelSize - 4 else { return nil }
        let text = String(decoding: UnsafeRawBufferPointer(start: base + offset + 4, count: length), as: UTF8.self)
        let fields = text.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
        guard fields.count == 4 else { return nil }
        return Label(plugin: fields[0], file: fields[1], version: fields[2], service: fields[3])
    }

    /// The plugin call the worker died in: the crashing thread's, when the crash handler noted
    /// it; else the one call running, if exactly one was. Nil when no plugin code was running.
    public func crash() -> Crash? {
        guard base.load(as: UInt64.self) == Self.magic else { return nil }
        let crashing = cynic_load_relaxed(crashingThreadWord)
        var running: [(call: RunningCall, thread: UInt64, name: String)] = []
        for index in 0..<min(slotsUsed, Self.slotCapacity) {
            let slot = Self.headerSize + index * Self.slotSize
            guard let call = RunningCall(word: cynic_load_relaxed(word(slot + 8))) else { continue }
            let nameBytes = UnsafeRawBufferPointer(start: base + slot + 24, count: Self.slotSize - 24).prefix { $0 != 0 }
            running.append((call, cynic_load_relaxed(word(slot + 16)), String(decoding: nameBytes, as: UTF8.self)))
        }
        let noted = crashing != 0
        let found = noted ? running.first { $0.thread == crashing } : (running.count == 1 ? running.first : nil)
        guard let found else { return nil }
        return Crash(label: label(found.call.label), callback: found.call.callback, threadName: found.name, noted: noted)
    }
}

public struct SharedTableError: Error, Sendable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

extension CallbackRegistry {
    /// The label of `plugin`'s generation in `service`.
    public func label(of plugin: Plugin, service: String) -> UInt32 {
        label(plugin: plugin.name, file: plugin.file, version: plugin.version, service: service)
    }
}
