import Synchronization

/// The bound on the bytes all connections together have queued to send and the kernel does not
/// have yet: `CYNIC_MAX_QUEUED_BYTES` bounds one connection, and twenty non-reading clients of a
/// plugin that sends until CYNIC_ERR_FULL would otherwise hold twenty times that.
///
/// A byte counts from the `send` that queues it until its write completes — written to the
/// kernel or failed — or until it is dropped from the queue (cancel_pending, the connection's
/// end), because a large send that NIO holds for a client that does not read is memory all the
/// same.
///
/// A refused send opens an *episode*, which ends once the queued bytes have fallen to half the
/// limit: the caller logs the first refusal of an episode and its end, not every refused send of
/// every connection.
public final class QueuedBytesBudget: Sendable {
    /// Safe on a 2-core machine with a few GiB: four connections' worth of CYNIC_MAX_QUEUED_BYTES.
    public static let defaultLimit = 256 << 20

    /// The budget of services started without one of their own (`cynic` gives its own, from
    /// `--max-queued-bytes`).
    public static let processWide = QueuedBytesBudget(limit: defaultLimit)

    public let limit: Int
    private let queued = Atomic<Int>(0)
    private let refusing = Atomic<Bool>(false)
    private let refusedSends = Atomic<Int>(0)

    public init(limit: Int) {
        precondition(limit > 0, "a budget of \(limit) bytes")
        self.limit = limit
    }

    /// Bytes queued by every connection now.
    public var queuedBytes: Int { queued.load(ordering: .relaxed) }

    /// Whether `count` more bytes would fit now; for the checks before a shaper sees a send.
    func hasRoom(for count: Int) -> Bool {
        queued.load(ordering: .relaxed) + count <= limit
    }

    /// Takes `count` bytes from the budget, or nothing when they do not fit.
    func reserve(_ count: Int) -> Bool {
        var current = queued.load(ordering: .relaxed)
        while current + count <= limit {
            let (exchanged, original) = queued.compareExchange(expected: current, desired: current + count,
                                                               ordering: .relaxed)
            if exchanged { return true }
            current = original
        }
        return false
    }

    /// Gives back `count` bytes reserved before. When that ends an episode of refusals, returns
    /// how many sends were refused in it (for the one line that says so).
    func release(_ count: Int) -> Int? {
        guard count > 0 else { return nil }
        let left = queued.subtract(count, ordering: .relaxed).newValue
        assert(left >= 0, "released more than was reserved")
        guard left <= limit / 2, refusing.load(ordering: .relaxed),
              refusing.exchange(false, ordering: .relaxed) else { return nil }
        return refusedSends.exchange(0, ordering: .relaxed)
    }

    /// Counts a send refused for want of room; true for the first of an episode, to be logged.
    func noteRefusal() -> Bool {
        refusedSends.add(1, ordering: .relaxed)
        return !refusing.exchange(true, ordering: .relaxed)
    }
}
