import CCynicPlugin
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// What a `cynic_conn *` is: not an address but a number, a slot of this process-wide table and
/// the slot's generation when it was handed out. A plugin that calls with the handle of a
/// connection that has ended, from whatever thread, then reads only this table — never freed —
/// and gets CYNIC_ERR_CLOSED, where an object behind the pointer would have been freed memory.
///
/// A handle's bits: the generation in the high 32, the slot's index + 1 in the low 32, so no
/// handle is NULL. A slot is taken on the connection's event-loop thread when it opens and given
/// back on that thread after conn_end, with its generation bumped. So a lookup that finds the
/// handle's generation and its own thread as the owner knows the connection cannot end under it,
/// and only then touches the driver; a lookup from another thread reads two atomics and stops.
enum ConnectionHandles {
    /// One handle's worth: the connection's driver and the position in its pipeline.
    private struct Slot: ~Copyable {
        let generation = Atomic<UInt32>(0)
        /// The owning thread's `pthread_self()`, 0 while the slot is free.
        let owner = Atomic<UInt>(0)
        /// Written and read on the owner thread only (the free list's lock hands a slot over).
        var driver: Unmanaged<ConnectionDriver>?
        var position = 0
    }

    private static let slotsPerChunk = 1 << 12
    /// 4,096 chunks of 4,096: 16 million handles live at once, far more than open files.
    private static let maxChunks = 1 << 12
    /// Never freed: a stale handle may be looked up at any time until the process exits.
    nonisolated(unsafe) private static let chunks: UnsafeMutablePointer<UnsafeMutablePointer<Slot>?> = {
        // nonisolated(unsafe): a chunk pointer is written once, under `free`'s lock, before
        // `slotCount` (released) makes its slots visible; readers load `slotCount` first.
        let chunks = UnsafeMutablePointer<UnsafeMutablePointer<Slot>?>.allocate(capacity: maxChunks)
        chunks.initialize(repeating: nil, count: maxChunks)
        return chunks
    }()
    /// Slots made so far; indices below it are readable.
    private static let slotCount = Atomic<Int>(0)
    /// Slots given back, ready for another connection.
    private static let free = Mutex<[Int]>([])

    /// Takes a slot for `driver` at `position`, on the connection's thread. The slot keeps the
    /// driver alive until `release`.
    static func acquire(_ driver: ConnectionDriver, position: Int) -> OpaquePointer {
        let index = free.withLock { free -> Int in
            if let index = free.popLast() { return index }
            let index = slotCount.load(ordering: .relaxed)
            precondition(index < slotsPerChunk * maxChunks, "more than \(slotsPerChunk * maxChunks) connection handles at once")
            if index % slotsPerChunk == 0 {
                let chunk = UnsafeMutablePointer<Slot>.allocate(capacity: slotsPerChunk)
                for offset in 0..<slotsPerChunk { (chunk + offset).initialize(to: Slot()) }
                chunks[index / slotsPerChunk] = chunk
            }
            slotCount.store(index + 1, ordering: .releasing)
            return index
        }
        let slot = slot(at: index)
        slot.pointee.driver = Unmanaged.passRetained(driver)
        slot.pointee.position = position
        slot.pointee.owner.store(currentThread, ordering: .releasing)
        let generation = slot.pointee.generation.load(ordering: .relaxed)
        return OpaquePointer(bitPattern: UInt(generation) << 32 | UInt(index + 1))!
    }

    /// Gives a slot back, on the connection's thread, once conn_end has returned: the handle is
    /// stale from now on.
    static func release(_ handle: OpaquePointer) {
        let index = Int(UInt(bitPattern: handle) & 0xffff_ffff) - 1
        let slot = slot(at: index)
        slot.pointee.driver?.release()
        slot.pointee.driver = nil
        // The generation first: a lookup that still sees the old one also sees this owner.
        slot.pointee.generation.add(1, ordering: .releasing)
        slot.pointee.owner.store(0, ordering: .releasing)
        free.withLock { $0.append(index) }
    }

    /// The driver and position behind `conn`, when the call comes from the connection's own
    /// thread while it is open: CYNIC_ERR_CLOSED once it has ended, CYNIC_ERR_THREAD from
    /// another thread, CYNIC_ERR_INVALID for what was never a handle.
    static func withDriver(_ conn: OpaquePointer?, _ body: (ConnectionDriver, Int) -> Int32) -> Int32 {
        guard let conn else { return CYNIC_ERR_INVALID }
        let bits = UInt(bitPattern: conn)
        let index = Int(bits & 0xffff_ffff) - 1
        let generation = UInt32(truncatingIfNeeded: bits >> 32)
        guard index >= 0, index < slotCount.load(ordering: .acquiring) else { return CYNIC_ERR_INVALID }
        let slot = slot(at: index)
        guard slot.pointee.generation.load(ordering: .acquiring) == generation else { return CYNIC_ERR_CLOSED }
        guard slot.pointee.owner.load(ordering: .acquiring) == currentThread else {
            // The connection may have ended on its thread since the first look.
            return slot.pointee.generation.load(ordering: .acquiring) == generation ? CYNIC_ERR_THREAD : CYNIC_ERR_CLOSED
        }
        // Our own thread owns the slot, so the generation seen is current: the connection is open.
        guard let driver = slot.pointee.driver else { return CYNIC_ERR_CLOSED }
        return body(driver.takeUnretainedValue(), slot.pointee.position)
    }

    private static func slot(at index: Int) -> UnsafeMutablePointer<Slot> {
        chunks[index / slotsPerChunk]! + index % slotsPerChunk
    }

    private static var currentThread: UInt {
        #if canImport(Glibc)
        UInt(pthread_self())
        #else
        UInt(bitPattern: pthread_self())
        #endif
    }
}
