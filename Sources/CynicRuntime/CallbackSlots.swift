import CIsolation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A plugin callback the host makes, as the watchdog names it.
public enum PluginCallback: UInt8, Sendable, CaseIterable {
    // Raw values start at 1: a running word of 0 means "no plugin code running".
    case connOpen = 1, connData, connRequest, connTimer, connResume, connPeerClosed, connEnd
    case shaperConnOpen, shaperTimer, shaperConnEnd
    /// The events of an upstream connection a behaviour opened (cynic.connect/1).
    case upstreamConnected, upstreamConnectFailed, upstreamData, upstreamPeerClosed, upstreamResume, upstreamTimer, upstreamEnded
    /// `create` then the configure function, on the control thread.
    case createAndConfigure

    /// The name a plugin author finds in the header.
    public var name: String {
        switch self {
        case .connOpen: "conn_open"
        case .connData: "conn_data"
        case .connRequest: "conn_request"
        case .connTimer: "conn_timer"
        case .connResume: "conn_resume"
        case .connPeerClosed: "conn_peer_closed"
        case .connEnd: "conn_end"
        case .shaperConnOpen: "cynic_shaper.conn_open"
        case .shaperTimer: "cynic_shaper.timer"
        case .shaperConnEnd: "cynic_shaper.conn_end"
        case .upstreamConnected: "cynic_upstream_events.connected"
        case .upstreamConnectFailed: "cynic_upstream_events.connect_failed"
        case .upstreamData: "cynic_upstream_events.data"
        case .upstreamPeerClosed: "cynic_upstream_events.peer_closed"
        case .upstreamResume: "cynic_upstream_events.resume"
        case .upstreamTimer: "cynic_upstream_events.timer"
        case .upstreamEnded: "cynic_upstream_events.ended"
        case .createAndConfigure: "create/configure"
        }
    }
}

/// Which plugin call a thread is in: an interned "plugin, service" label and the callback, packed
/// into one word so that a thread can publish it with a single atomic store.
public struct RunningCall: Equatable, Sendable {
    public let label: UInt32
    public let callback: PluginCallback

    public init(label: UInt32, callback: PluginCallback) {
        self.label = label
        self.callback = callback
    }

    /// Never 0: the callback's raw value is at least 1.
    var word: UInt64 { UInt64(label) << 8 | UInt64(callback.rawValue) }

    /// nil for 0 (idle) or a word no thread wrote.
    init?(word: UInt64) {
        guard let callback = PluginCallback(rawValue: UInt8(truncatingIfNeeded: word)) else { return nil }
        self.init(label: UInt32(truncatingIfNeeded: word >> 8), callback: callback)
    }
}

/// One thread's note of the plugin call it is in, read by the watchdog from its own thread — and,
/// under `--isolate`, by the supervisor once the worker has died (see `SharedCallbackTable`).
///
/// Only the owning thread writes, so entering a call is a relaxed load and two relaxed stores: no
/// lock, no clock, no read-modify-write. The watchdog reads the two words separately; a torn pair
/// only matters for a call that is being replaced, and a stuck call is one whose words stay put
/// across several samples, by which time both are settled.
public final class CallbackSlot: @unchecked Sendable {
    // @unchecked: the two words are only touched through relaxed atomic loads and stores; the
    // memory they are in is never freed (a slot lives as long as the process).

    /// The thread's name ("NIO-ELT-0-#1"), for the log line.
    public let threadName: String
    /// [0]: bumped on every outermost plugin call, so that a call that returns and another that
    /// starts between two samples are told apart from one long call. [1]: `RunningCall.word` of
    /// the call under way, 0 when no plugin code runs on the thread.
    private let words: UnsafeMutablePointer<UInt64>

    init(threadName: String, words: UnsafeMutablePointer<UInt64>) {
        self.threadName = threadName
        self.words = words
    }

    /// A plugin call starts. Owning thread only.
    @inline(__always)
    public func enter(_ call: RunningCall) {
        cynic_store_relaxed(words, cynic_load_relaxed(words) &+ 1)
        cynic_store_relaxed(words + 1, call.word)
    }

    /// The plugin call returned. Owning thread only.
    @inline(__always)
    public func leave() {
        cynic_store_relaxed(words + 1, 0)
    }

    /// What the watchdog sees: the sequence and the running word (0 = idle).
    public func sample() -> (sequence: UInt64, running: UInt64) {
        (cynic_load_relaxed(words), cynic_load_relaxed(words + 1))
    }
}

/// Every thread that runs plugin code, and the labels of the plugins it runs: what the watchdog
/// reads. Both tables are append-only — a slot outlives its connections and a label its plugin —
/// so whatever the watchdog reads stays valid even when the connection ended meanwhile.
public final class CallbackRegistry: Sendable {
    /// The process's one registry: event-loop threads and the control thread register here.
    public static let shared = CallbackRegistry()

    private struct Labels {
        var texts: [String] = []
        var indexes: [String: UInt32] = [:]
    }

    private let labels = Mutex(Labels())
    private let slots = Mutex<[UInt: CallbackSlot]>([:])
    /// Where new slots and labels are also published for a supervisor, once `publish(to:)` says.
    private let shared = Mutex<SharedCallbackTable?>(nil)

    public init() {}

    /// From now on every slot made and every label interned is written to `table` too, so that
    /// the supervisor can name the call a dead worker was in. Called once, before any plugin
    /// runs; slots made before stay private.
    public func publish(to table: SharedCallbackTable) {
        shared.withLock { $0 = table }
    }

    /// The calling thread's slot, made on its first call. Taken once per connection (a lock, a
    /// dictionary lookup), never per callback.
    public func slotForCurrentThread() -> CallbackSlot {
        let thread = UInt(bitPattern: Int(bitPattern: UInt(pthread_self())))
        return slots.withLock { slots in
            if let slot = slots[thread] { return slot }
            let name = Self.currentThreadName()
            // Slots are never freed: a thread's slot outlives its connections, and the watchdog
            // may read it at any time.
            let words = shared.withLock { $0?.addSlot(threadName: name, threadID: cynic_thread_id()) }
                ?? Self.privateWords()
            let slot = CallbackSlot(threadName: name, words: words)
            slots[thread] = slot
            return slot
        }
    }

    private static func privateWords() -> UnsafeMutablePointer<UInt64> {
        let words = UnsafeMutablePointer<UInt64>.allocate(capacity: 2)
        words.initialize(repeating: 0, count: 2)
        return words
    }

    /// The number standing for "plugin `plugin`, service `service`", the same each time it is
    /// asked for. Once per connection. `file` and `version` say which generation it is, for the
    /// supervisor's line when it crashes a worker.
    public func label(plugin: String, file: String? = nil, version: String? = nil, service: String) -> UInt32 {
        let text = "plugin '\(plugin)' (service \(service))"
        let key = "\(text)\u{0}\(file ?? "")\u{0}\(version ?? "")"
        return labels.withLock { labels in
            if let index = labels.indexes[key] { return index }
            let index = UInt32(labels.texts.count)
            labels.texts.append(text)
            labels.indexes[key] = index
            shared.withLock {
                $0?.addLabel(index, SharedCallbackTable.Label(plugin: plugin, file: file ?? "", version: version ?? "",
                                                             service: service))
            }
            return index
        }
    }

    /// The text of a label; for the watchdog's log lines.
    public func text(of label: UInt32) -> String {
        labels.withLock { labels in
            Int(label) < labels.texts.count ? labels.texts[Int(label)] : "plugin #\(label)"
        }
    }

    /// Every slot, in no particular order.
    public var allSlots: [CallbackSlot] { slots.withLock { Array($0.values) } }

    /// "conn_open of plugin 'x' (service y)".
    public func describe(_ call: RunningCall) -> String {
        "\(call.callback.name) of \(text(of: call.label))"
    }

    /// The calling thread's name, from /proc (Glibc's pthread_getname_np is not imported).
    private static func currentThreadName() -> String {
        let fd = open("/proc/thread-self/comm", O_RDONLY)
        guard fd >= 0 else { return "thread" }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: 64)
        let count = read(fd, &bytes, bytes.count)
        guard count > 0 else { return "thread" }
        return String(decoding: bytes[..<count], as: UTF8.self).trimmingNewline
    }
}

extension String {
    fileprivate var trimmingNewline: String { hasSuffix("\n") ? String(dropLast()) : self }
}

extension CallbackRegistry {
    /// Every plugin call under way now, one phrase each ("conn_open of plugin 'x' (service y) on
    /// thread NIO-ELT-0-#1"): what the forced exit names when no watchdog timed them.
    public func runningCalls() -> [String] {
        allSlots.compactMap { slot in
            RunningCall(word: slot.sample().running).map { "\(describe($0)) on thread \(slot.threadName)" }
        }.sorted()
    }
}
