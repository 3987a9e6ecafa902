import Synchronization

/// A service's connections from accept to close, against its bound (`ServiceLimits`,
/// `max_connections`).
///
/// A connection over the bound is accepted and closed at once, as nginx does when its
/// `worker_connections` are used up, rather than left in the kernel's backlog as HAProxy does past
/// its `maxconn`: a client under test then learns at once (an empty reply: curl exit 52, or a reset
/// when it had sent bytes already), instead of hanging in a backlog where a test cannot tell a
/// limit from a slow service; and a full backlog would turn away the connections of every client
/// alike, in the kernel, where cynic cannot say so.
///
/// Counted here, from the accept, not by the connection's driver: a TLS connection holds its
/// descriptor and memory through its handshake, before any driver exists.
final class ConnectionAdmission: Sendable {
    private let open = Atomic<Int>(0)

    /// Takes a place when fewer than `limit` are taken; false when the service is full.
    func admit(limit: Int) -> Bool {
        var current = open.load(ordering: .relaxed)
        while current < limit {
            let (exchanged, original) = open.compareExchange(expected: current, desired: current + 1, ordering: .relaxed)
            if exchanged { return true }
            current = original
        }
        return false
    }

    /// Gives back the place of a connection admitted before, once it has closed.
    func release() {
        let left = open.subtract(1, ordering: .relaxed).newValue
        assert(left >= 0, "released more connections than were admitted")
    }

    /// Connections admitted and not yet closed.
    var current: Int { open.load(ordering: .relaxed) }
}
