import Synchronization

/// Counts open connections, from any event loop: a service's, and a plugin generation's.
public final class ConnectionCounter: Sendable {
    private let open = Atomic<Int>(0)
    private let total = Atomic<Int>(0)

    public init() {}

    public func opened() {
        open.add(1, ordering: .relaxed)
        total.add(1, ordering: .relaxed)
    }

    public func closed() { open.subtract(1, ordering: .relaxed) }

    /// Open now.
    public var current: Int { open.load(ordering: .relaxed) }
    /// Accepted since the start.
    public var accepted: Int { total.load(ordering: .relaxed) }
}
