import CCynicPlugin

/// A client connection and the upstream connections its behaviour opened (cynic.connect/1): one
/// event loop, one plugin state, so one rule for when host functions may be called and one for
/// who is read.
///
/// - Calls: a host function taking any member's handle is valid while a callback of any member
///   runs (the header's THREADS rule for upstreams), so the depth of plugin calls is the group's.
///   When the outermost call returns, every member performs what was queued on it.
/// - Flow control: a member with more than CYNIC_PAIR_QUEUE_HIGH bytes unsent holds back every
///   *other* member's reading until it is under CYNIC_PAIR_QUEUE_LOW: a fast upstream relayed into
///   a slow client keeps memory flat. A member never holds back itself (a plain behaviour alone in
///   its group reads as before).
///
/// - Counts: the bytes of the client and those of its upstreams together, and how its upstream
///   connects went, for the client's record: an upstream ends before its client does.
///
/// Only the group's event loop touches it: no lock.
final class ConnectionGroup {
    /// How deep the group is in plugin callbacks.
    var callbackDepth = 0
    /// Bytes read and written on the client connection...
    let client = ByteCounter()
    /// ...and on every upstream connection together.
    let upstream = ByteCounter()
    /// Upstream connections the behaviour opened, and those of them established.
    var upstreamsOpened = 0
    var upstreamConnections = 0
    /// Every upstream connect that failed, in order.
    var failedConnects: [FailedConnect] = []
    /// The latest upstream connect, if it failed: a behaviour that ends its client now does so
    /// because of it.
    var lastConnectFailure: FailedConnect?
    /// The client first, then each upstream still open, in the order they were opened.
    private(set) var members: [ConnectionDriver] = []
    /// Members whose unsent bytes passed the high mark and have not yet fallen under the low one.
    private var pressing: [ObjectIdentifier] = []

    func join(_ driver: ConnectionDriver) {
        members.append(driver)
    }

    func leave(_ driver: ConnectionDriver) {
        members.removeAll { $0 === driver }
        if pressing.contains(ObjectIdentifier(driver)) {
            pressing.removeAll { $0 == ObjectIdentifier(driver) }
            updateReading()
        }
    }

    /// After the outermost plugin call: perform what it queued, on whichever member.
    func pumpAll() {
        for member in members { member.pump() }
    }

    /// Called by a member when its unsent bytes change.
    func unsentChanged(_ driver: ConnectionDriver, unsent: Int) {
        let id = ObjectIdentifier(driver)
        let isPressing = pressing.contains(id)
        if !isPressing, unsent > Int(CYNIC_PAIR_QUEUE_HIGH) {
            pressing.append(id)
            updateReading()
        } else if isPressing, unsent < Int(CYNIC_PAIR_QUEUE_LOW) {
            pressing.removeAll { $0 == id }
            updateReading()
        }
    }

    /// Whether another member's unsent bytes hold back `driver`'s reading.
    func isHeldBack(_ driver: ConnectionDriver) -> Bool {
        pressing.contains { $0 != ObjectIdentifier(driver) }
    }

    private func updateReading() {
        // A group of one is never held back: skip the work for every plain behaviour.
        guard members.count > 1 else { return }
        for member in members { member.updateReading() }
    }
}

/// Bytes read and written, as plain integers: counted on every read and write.
final class ByteCounter {
    var bytesIn = 0
    var bytesOut = 0
}
