import CCynicPlugin
import DequeModule
import NIOCore

/// One connection's queue of actions and where the connection stands, as plain values: what may
/// still be queued, what is performed next, how many bytes wait to be sent. The driver performs
/// what this decides and reports back when an action that takes time is done; nothing here
/// touches a socket, so every transition is tested alone (`ActionQueueTests`).
///
/// A connection's life, as far as the queue is concerned:
///
///     open ──shutdown_write queued──▶ write shut ──close/reset queued──▶ finishing ──▶ ended
///       └──────────────────────close/reset queued────────────────────────┘      ▲
///       └───────────────────────────(the socket closes)───────────────────────────┘
///
/// - open: anything may be queued.
/// - write shut: a shutdown_write is queued; a send after it could never be written, so it is
///   refused (CYNIC_ERR_CLOSED) instead of failing on the socket later as if the peer had gone.
/// - finishing: a close or reset is queued; nothing may be queued after it until cancel_pending,
///   which drops the queue and goes back (to open, or write shut if the shutdown was performed).
/// - ended: nothing is queued or performed any more.
struct ActionQueue {
    enum Phase: Equatable {
        case open
        case writeShut
        case finishing
        case ended
    }

    private(set) var phase = Phase.open
    private var actions: Deque<HostAction<ByteBuffer>> = []
    /// A shutdown_write has been performed (not only queued): cancel_pending cannot undo it.
    private var writeShutPerformed = false
    /// Bytes of the sends in the queue.
    private(set) var queuedSendBytes = 0
    /// Bytes of the send being written: handed to the socket, not yet taken by the kernel.
    private(set) var writingSendBytes = 0
    /// A send, wait or shutdown is under way: the next action starts when it is done.
    private(set) var inProgress = false

    /// Bytes not yet sent: what the bounds on one connection and on all of them count.
    var unsentBytes: Int { queuedSendBytes + writingSendBytes }
    var isEmpty: Bool { actions.isEmpty }
    /// Nothing queued, nothing under way, not ended.
    var isIdle: Bool { actions.isEmpty && !inProgress && phase != .ended }
    /// A close or reset is queued (or ended): the plugin hears no more data.
    var isFinishing: Bool { phase == .finishing || phase == .ended }

    /// Queues `action`: CYNIC_OK, or CYNIC_ERR_CLOSED when the phase no longer takes it.
    mutating func enqueue(_ action: HostAction<ByteBuffer>) -> Int32 {
        switch phase {
        case .ended, .finishing:
            return CYNIC_ERR_CLOSED
        case .writeShut:
            if case .send = action { return CYNIC_ERR_CLOSED }
            if case .shutdownWrite = action { return CYNIC_OK }  // already shut: nothing to add
        case .open:
            break
        }
        if case .send(let buffer) = action { queuedSendBytes += buffer.readableBytes }
        if case .shutdownWrite = action { phase = .writeShut }
        if action.endsConnection { phase = .finishing }
        actions.append(action)
        return CYNIC_OK
    }

    /// The next action to perform, taken off the queue, or nil while one is under way, the queue
    /// is empty or the connection has ended. A send, wait or shutdown is then under way until
    /// `finished...` is called.
    mutating func next() -> HostAction<ByteBuffer>? {
        guard !inProgress, phase != .ended, let action = actions.popFirst() else { return nil }
        switch action {
        case .send(let buffer):
            queuedSendBytes -= buffer.readableBytes
            writingSendBytes += buffer.readableBytes
            inProgress = true
        case .wait:
            inProgress = true
        case .shutdownWrite:
            writeShutPerformed = true
            inProgress = true
        case .close, .reset, .stopReading, .then:
            break
        }
        return action
    }

    /// The send of `count` bytes under way is done (written, or failed). Called exactly once per
    /// send, even after the end: its bytes stop counting only now.
    mutating func finishedSend(of count: Int) {
        writingSendBytes -= count
        if phase != .ended { inProgress = false }
    }

    /// The wait or shutdown under way is done.
    mutating func finishedWaitOrShutdown() {
        if phase != .ended { inProgress = false }
    }

    /// cancel_pending: drops everything queued and not started, and ends a wait under way (the
    /// driver cancels its timer). Returns the bytes dropped; CYNIC_ERR_CLOSED once ended.
    mutating func cancelPending(waitUnderWay: Bool) -> (status: Int32, droppedBytes: Int) {
        guard phase != .ended else { return (CYNIC_ERR_CLOSED, 0) }
        let dropped = queuedSendBytes
        actions.removeAll()
        queuedSendBytes = 0
        phase = writeShutPerformed ? .writeShut : .open
        if waitUnderWay { inProgress = false }
        return (CYNIC_OK, dropped)
    }

    /// The connection is over: drops the queue. Returns the bytes dropped (a send under way still
    /// reports back through `finishedSend`).
    mutating func end() -> Int {
        let dropped = queuedSendBytes
        phase = .ended
        actions.removeAll()
        queuedSendBytes = 0
        return dropped
    }
}
