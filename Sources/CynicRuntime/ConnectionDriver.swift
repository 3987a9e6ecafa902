import CCynicPlugin
import CynicPlugins
import DequeModule
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Logging
import NIOCore
import NIOSSL
import NIOPosix
#if canImport(Glibc)
import Glibc
#endif

/// Runs one connection for a plugin: calls its callbacks, and performs the actions it asks for,
/// in order, on the connection's event loop.
///
/// With shapers, the behaviour's actions pass through each shaper that applies to this
/// connection before they reach the queue: a `cynic_conn *` is a handle of `ConnectionHandles`,
/// the behaviour's at position 0 and each shaper's downstream one position further. Handles are
/// taken when the connection opens and given back once conn_end has returned; a stale one is
/// refused by the table without touching this driver.
final class ConnectionDriver: ChannelInboundHandler {
    typealias InboundIn = ConnectionInput
    typealias OutboundOut = ByteBuffer

    /// An action as it waits in the queue: its bytes copied.
    typealias Action = HostAction<ByteBuffer>
    /// An action as a plugin asks for it, before it reaches the queue: its bytes borrowed.
    typealias Request = HostAction<UnsafeRawBufferPointer>

    /// Who hears this connection's events.
    enum Role {
        /// A client of the service: its behaviour's callbacks.
        case client
        /// A connection the behaviour opened (cynic.connect/1): the events it gave `open`, with
        /// the state it gave.
        case upstream(events: cynic_upstream_events, state: UnsafeMutableRawPointer?)
    }

    /// A shaper that applies to this connection, with its per-connection state.
    private struct ShaperStage {
        /// Its name in the service: a close of its own ends the connection "by shaper NAME".
        let name: String
        let instance: BehaviourInstance
        let callbacks: cynic_shaper
        var state: UnsafeMutableRawPointer?

        /// What a removed shaper leaves in its place: no callbacks, so every action passes on
        /// to the next position, and positions (and the handles that name them) stay as they are.
        func removed() -> ShaperStage {
            ShaperStage(name: name, instance: instance, callbacks: cynic_shaper(), state: nil, isRemoved: true)
        }

        var isRemoved = false
    }

    private let instance: BehaviourInstance
    private let callbacks: cynic_plugin
    private let role: Role
    /// This connection with the client or upstreams it belongs with (see `ConnectionGroup`).
    let group: ConnectionGroup
    /// The shapers with direction "upstream" drawn for this client: each upstream it opens goes
    /// through them.
    private var upstreamShapers: [ServiceSetup.Shaper]
    /// The connection's event loop: known at accept for a client, at `open` for an upstream.
    private var loop: (any EventLoop)?
    /// The peer reset the connection (ECONNRESET): how an upstream's `ended` tells it.
    private var resetByPeer = false
    /// An upstream whose client was reset before it connected: it resets once connected.
    private var passesResetOnConnect = false
    /// The autoRead last set on the channel (NIO's default is on).
    private var readingApplied = true
    private var stages: [ShaperStage]
    /// `handles[0]` is the behaviour's connection; `handles[i + 1]` is downstream of stage i.
    /// Empty until the channel is active.
    private var handles: [OpaquePointer] = []
    /// Timers set with `after` that have not fired, by a counter, to cancel at the end.
    private var timers: [UInt64: Scheduled<Void>] = [:]
    private var timerCount: UInt64 = 0
    private var logger: Logger
    private let connections: ConnectionCounter
    /// Told what happens on this connection, when the service has an observer.
    private let observer: ConnectionObserver?
    /// This connection's number in its service, for the observer.
    private let number: Int
    /// How the connection is ending, once we know: set when a close or reset is performed, on a
    /// bad request, on a socket error, when cynic closes it; `ConnectionEnd.final` decides the rest.
    private var ending: ConnectionEnd?
    /// Where the close-like action being submitted started (see `submit`): the behaviour (0) or
    /// the shaper before that position. Set only while one passes through the shapers.
    private var submittedFrom: Int?
    /// Where the close or reset in the queue came from, and the shutdown_write.
    private var queuedCloseFrom = 0
    private var queuedShutdownFrom = 0
    /// Who sent our FIN with a shutdown_write, when it went out before the peer's.
    private var shutFirstBy: ConnectionEnd.Origin?
    /// Bytes this connection reads and writes: its own group's client or upstream count.
    private let counter: ByteCounter
    /// For a client of a service with an event log: what its record says besides the counts.
    private let recordContext: RecordContext?
    /// When it became active, for its record's start and duration.
    private var startedAt = NIODeadline.uptimeNanoseconds(0)
    private var startedWall = Date(timeIntervalSince1970: 0)
    private var peerAddress: SocketAddress?
    /// The open client connections of the service, which can close them all.
    private let openChannels: OpenChannels?
    /// For an upstream: where it connects, as its failed connect would be listed.
    private var upstreamAddress = ""

    private var context: ChannelHandlerContext?
    /// What conn_open returned.
    private var state: UnsafeMutableRawPointer?
    /// The actions queued and where the connection stands; this handler performs what it
    /// decides. Its unsent bytes (queued, and handed to NIO but not yet written: a client that
    /// does not read keeps them there) are bounded by `CYNIC_MAX_QUEUED_BYTES`, so a plugin that
    /// sends in a loop cannot exhaust memory; every such byte is also held from `queuedBytes`.
    private var queue = ActionQueue()
    /// The bound on the bytes of every connection together.
    private let queuedBytes: QueuedBytesBudget
    /// Warnings every client can cause, said once with a count (shared by the service).
    private let warnings: LogThrottle
    private var scheduledWait: Scheduled<Void>?
    /// How deep the group is in plugin callbacks: host functions are only valid inside one.
    private var callbackDepth: Int {
        get { group.callbackDepth }
        set { group.callbackDepth = newValue }
    }
    private var pumping = false
    private var ended: Bool { queue.phase == .ended }
    private var readingStopped = false
    private var peerClosed = false
    /// Where this connection's thread tells the watchdog which plugin call runs: found once, when
    /// the connection becomes active on its event loop.
    private var callbackSlot: CallbackSlot?
    /// The watchdog's labels of the behaviour (at 0) and of each shaper (at its position + 1).
    private var callbackLabels: [UInt32]
    /// HTTP requests waiting until the answer to the previous one is done.
    private var pendingRequests: Deque<CollectedRequest> = []

    /// Requests a client may pipeline before we stop reading from it.
    private static let maxPendingRequests = 16
    /// Actions one turn of the pump performs before letting the event loop serve others...
    private static let actionsPerTurn = 64
    /// ...or bytes it sends: 64 sends of a megabyte each would hold the loop for a long turn.
    private static let bytesPerTurn = 256 << 10

    /// `shapers` are those that apply to this connection, in order; `observer`, when there is
    /// one, hears this connection's events as connection `number`.
    init(instance: BehaviourInstance, shapers: [ServiceSetup.Shaper], upstreamShapers: [ServiceSetup.Shaper] = [],
         logger: Logger, connections: ConnectionCounter,
         queuedBytes: QueuedBytesBudget, warnings: LogThrottle, observer: ConnectionObserver? = nil, number: Int = 0,
         role: Role = .client, group: ConnectionGroup? = nil, record: RecordContext? = nil,
         openChannels: OpenChannels? = nil) {
        self.instance = instance
        self.callbacks = instance.plugin.descriptor
        self.role = role
        self.upstreamShapers = upstreamShapers
        let group = group ?? ConnectionGroup()
        self.group = group
        if case .upstream = role { counter = group.upstream } else { counter = group.client }
        recordContext = record
        self.openChannels = openChannels
        let stages = shapers.compactMap { shaper in
            shaper.instance.plugin.shaper.map { ShaperStage(name: shaper.name, instance: shaper.instance, callbacks: $0, state: nil) }
        }
        self.stages = stages
        self.logger = logger
        self.connections = connections
        self.queuedBytes = queuedBytes
        self.warnings = warnings
        self.observer = observer
        self.number = number
        // The service's logger carries its name (Service sets it); a driver made elsewhere has none.
        let service = logger[metadataKey: "service"].map { "\($0)" } ?? "none"
        callbackLabels = ([instance] + stages.map(\.instance)).map {
            CallbackRegistry.shared.label(of: $0.plugin, service: service)
        }
        self.group.join(self)
    }

    /// The client's address, for the lines this connection logs: given with each line as it is
    /// logged, not set on the logger at the open, where StreamLogHandler renders its metadata
    /// again on every change (2 % of a short connection's cost).
    private var peerMetadata: Logger.Metadata? {
        peerAddress.map { ["peer": "\($0)"] }
    }

    /// The logger with the peer, for lines logged through others (the warnings' throttle).
    private var loggerWithPeer: Logger {
        var withPeer = logger
        if let peerAddress { withPeer[metadataKey: "peer"] = "\(peerAddress)" }
        return withPeer
    }

    private var isUpstream: Bool {
        if case .upstream = role { return true }
        return false
    }

    /// The behaviour's `cynic_conn *`.
    private var conn: OpaquePointer { handles[0] }

    /// The driver and position behind a `cynic_conn *`, when the call comes from inside one of
    /// the connection's callbacks: the table checks the handle's generation and thread, this
    /// that a callback of this connection is running (not one of another on the same thread).
    static func withHandle(_ conn: OpaquePointer?, _ body: (ConnectionDriver, Int) -> Int32) -> Int32 {
        ConnectionHandles.withDriver(conn) { driver, position in
            driver.callbackDepth > 0 ? body(driver, position) : CYNIC_ERR_THREAD
        }
    }

    // MARK: Channel events

    func channelActive(context: ChannelHandlerContext) {
        if case .upstream(let events, let upstreamState) = role {
            // Its client ended while it was connecting: nobody is left to hear it. A client that
            // was reset passes its reset on even so.
            guard !ended else {
                if passesResetOnConnect, let socket = context.channel as? any SocketOptionProvider {
                    _ = socket.setSoLinger(linger(l_onoff: 1, l_linger: 0))
                }
                context.close(promise: nil)
                return
            }
            self.context = context
            group.upstreamConnections += 1
            group.lastConnectFailure = nil
            updateReading()
            logger.debug("upstream connected")
            if let connected = events.connected {
                callPlugin(.upstreamConnected) { connected(upstreamState, conn) }
            } else {
                pump()
            }
            return
        }
        self.context = context
        loop = context.eventLoop
        handles = (0...stages.count).map { ConnectionHandles.acquire(self, position: $0) }
        peerAddress = context.remoteAddress
        if recordContext != nil {
            startedAt = .now()
            startedWall = Date()
        }
        openChannels?.opened(context.channel)
        connections.opened()
        instance.plugin.connections.opened()
        logger.debug("connection opened", metadata: peerMetadata)
        report(.opened(peer: context.remoteAddress.map(Self.describe)))
        callbackSlot = CallbackRegistry.shared.slotForCurrentThread()
        callPlugin(.connOpen) {
            // Shapers first: what they queue on open (a latency's wait) comes before anything.
            for index in stages.indices {
                markRunning(.shaperConnOpen, at: index + 1)
                stages[index].state = stages[index].callbacks.conn_open?(stages[index].instance.pointer, handles[index + 1])
            }
            markRunning(.connOpen, at: 0)
            state = callbacks.conn_open(instance.pointer, conn)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let input = unwrapInboundIn(data)
        if observer != nil, !ended {
            switch input {
            case .bytes(let buffer): report(.received(bytes: buffer.readableBytes))
            case .request(let request): report(.request("\(request.head.method.rawValue) \(request.head.uri)"))
            case .badRequest: break
            }
        }
        // Once a close or reset is queued the plugin hears nothing more (see the header).
        guard !readingStopped, !queue.isFinishing else { return }
        switch input {
        case .bytes(let buffer):
            // The plugin reads NIO's buffer in place: it is borrowed for the call, as the header
            // says, and a relay copies each chunk once (into its send), not twice.
            switch role {
            case .client:
                guard let onData = callbacks.conn_data else { return }
                callPlugin(.connData) {
                    buffer.withUnsafeReadableBytes { onData(state, conn, $0.baseAddress?.assumingMemoryBound(to: UInt8.self), $0.count) }
                }
            case .upstream(let events, let upstreamState):
                guard let onData = events.data else { return }
                callPlugin(.upstreamData) {
                    buffer.withUnsafeReadableBytes { onData(upstreamState, conn, $0.baseAddress?.assumingMemoryBound(to: UInt8.self), $0.count) }
                }
            }
        case .request(let request):
            pendingRequests.append(request)
            updateReading()
            if isIdle { deliverNextRequest() }
        case .badRequest(let reason):
            warnings.warning("bad request", "closing connection: \(reason)", logger: loggerWithPeer, flushOn: context.eventLoop)
            ending = ending ?? ConnectionEnd(.dropped, by: .cynic, reason: reason)
            context.close(promise: nil)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let reshape = event as? Reshape {
            apply(reshape)
            return
        }
        if let close = event as? CloseConnection {
            guard !ended else { return }
            ending = ending ?? ConnectionEnd(.closed, by: .cynic, reason: close.reason)
            context.close(promise: nil)
            return
        }
        guard let event = event as? ChannelEvent, event == .inputClosed else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        // A server that does not read does not see the peer leave (see stop_reading). A plugin
        // with a close queued (behind a long wait, say) still hears it, to close at once. Once
        // the connection has ended the plugin has freed its state: it hears nothing more. (The
        // event can come after the end: an EOF in the middle of a request makes the decoder
        // fail, the request is refused and the channel closed, and then the event passes on.)
        guard !readingStopped, !ended, context != nil else { return }
        peerClosed = true
        report(.peerClosed)
        if case .upstream(let events, let upstreamState) = role, let onPeerClosed = events.peer_closed {
            callPlugin(.upstreamPeerClosed) { onPeerClosed(upstreamState, conn) }
        } else if !isUpstream, let onPeerClosed = callbacks.conn_peer_closed {
            callPlugin(.connPeerClosed) { onPeerClosed(state, conn) }
        } else if isIdle {
            _ = queue.enqueue(.close)
            pump()
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A TLS client that ends without a close_notify (curl, most of them) is a FIN, and the
        // inputClosed event that follows says so; under TLS it is no error.
        if case NIOSSLError.uncleanShutdown = error { return }
        // A peer that resets is ordinary business here: it ends this connection, nothing else.
        logger.debug("connection error: \(error)", metadata: peerMetadata)
        if (error as? IOError)?.errnoCode == ECONNRESET { resetByPeer = true }
        if ending == nil { ending = .socketError(error) }
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        end()
        context.fireChannelInactive()
    }

    // MARK: Actions, as the host table asks for them

    /// An action asked for at `position`: it passes through the shapers from there on, each of
    /// which may forward it (changed or not) downstream, and what comes out is queued.
    ///
    /// A close, reset or shutdown_write remembers where it started: a shaper that forwards the
    /// behaviour's close calls back in here, at its downstream position, while the behaviour's is
    /// still being submitted, and the close stays the behaviour's.
    func submit(_ request: Request, at position: Int) -> Int32 {
        switch request {
        case .close, .reset, .shutdownWrite:
            guard submittedFrom == nil else { return pass(request, at: position) }
            submittedFrom = position
            defer { submittedFrom = nil }
            return pass(request, at: position)
        default:
            return pass(request, at: position)
        }
    }

    private func pass(_ request: Request, at position: Int) -> Int32 {
        guard !ended else { return CYNIC_ERR_CLOSED }
        // Checked at every position, before any shaper sees the send: a shaper's own send returns
        // nothing, so a behaviour behind one would otherwise never hear that the queue is full.
        // What a shaper forwards comes back here at the next position, and is checked the same.
        if case .send(let bytes) = request {
            if queue.unsentBytes + bytes.count > Int(CYNIC_MAX_QUEUED_BYTES) {
                return refuseFullConnection()
            }
            if !queuedBytes.hasRoom(for: bytes.count) { return refuseFullBudget() }
        }
        if position < stages.count {
            let stage = stages[position]
            let downstream = handles[position + 1]
            switch request {
            case .send(let bytes):
                if let send = stage.callbacks.send {
                    send(stage.state, downstream, bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count)
                    return CYNIC_OK
                }
            case .wait(let milliseconds):
                if let wait = stage.callbacks.wait {
                    wait(stage.state, downstream, milliseconds)
                    return CYNIC_OK
                }
            case .close:
                if let close = stage.callbacks.close { close(stage.state, downstream); return CYNIC_OK }
            case .reset:
                if let reset = stage.callbacks.reset { reset(stage.state, downstream); return CYNIC_OK }
            case .shutdownWrite:
                if let shutdown = stage.callbacks.shutdown_write { shutdown(stage.state, downstream); return CYNIC_OK }
            case .stopReading, .then:
                break  // flow control: always the behaviour's own
            }
            return pass(request, at: position + 1)
        }
        switch request {
        case .send(let bytes):
            // An upstream takes sends before it is connected: they wait in the queue.
            // Checked above, taken here: another connection may have taken the room meanwhile.
            guard queuedBytes.reserve(bytes.count) else { return refuseFullBudget() }
            var buffer = Self.allocator.buffer(capacity: bytes.count)
            buffer.writeBytes(bytes)
            let status = queue.enqueue(.send(buffer))
            guard status == CYNIC_OK else {
                releaseQueuedBytes(bytes.count)
                return status
            }
            group.unsentChanged(self, unsent: queue.unsentBytes)
            return status
        default:
            // No bytes to copy: the same action, queued as asked.
            let status = queue.enqueue(request.mapBytes { _ in Self.allocator.buffer(capacity: 0) })
            if status == CYNIC_OK {
                // At most one close or reset is queued at a time: the one performed is this one.
                switch request {
                case .close, .reset: queuedCloseFrom = submittedFrom ?? position
                case .shutdownWrite: queuedShutdownFrom = submittedFrom ?? position
                default: break
                }
            }
            return status
        }
    }

    /// A timer for the plugin at `position` (the behaviour, or the shaper before it).
    func after(milliseconds: UInt64, tag: UInt64, at position: Int) -> Int32 {
        guard let loop, !ended else { return CYNIC_ERR_CLOSED }
        let delay = TimeAmount.milliseconds(Int64(clamping: milliseconds))
        timerCount += 1
        let id = timerCount
        timers[id] = loop.assumeIsolated().scheduleTask(in: delay) {
            self.timers[id] = nil
            guard !self.ended else { return }
            let callback: PluginCallback = position > 0 ? .shaperTimer : self.isUpstream ? .upstreamTimer : .connTimer
            self.callPlugin(callback, at: position) {
                if position == 0 {
                    switch self.role {
                    case .client: self.callbacks.conn_timer?(self.state, self.conn, tag)
                    case .upstream(let events, let upstreamState): events.timer?(upstreamState, self.conn, tag)
                    }
                } else {
                    let stage = self.stages[position - 1]
                    stage.callbacks.timer?(stage.state, self.handles[position], tag)
                }
            }
        }
        return CYNIC_OK
    }

    /// A send that would take the connection's unsent bytes past its bound: refused, and said
    /// once for however many connections do it within the throttle's window.
    private func refuseFullConnection() -> Int32 {
        let unsent = queue.unsentBytes
        warnings.warning("connection queue full",
                         "send refused: \(unsent) bytes are queued on this connection and not yet sent, the most is \(CYNIC_MAX_QUEUED_BYTES) (stream with then)",
                         logger: loggerWithPeer, flushOn: context?.eventLoop)
        return CYNIC_ERR_FULL
    }

    /// A send that would take the bytes of all connections together past `queuedBytes`:
    /// refused, and said once per episode, whatever the number of connections refused in it.
    private func refuseFullBudget() -> Int32 {
        if queuedBytes.noteRefusal() {
            logger.warning("send refused: connections together have \(queuedBytes.queuedBytes) bytes queued and not yet sent, the most is \(queuedBytes.limit) (--max-queued-bytes); further refusals are not logged until half of that is sent")
        }
        return CYNIC_ERR_FULL
    }

    /// Gives bytes back to the budget once they are written, failed or dropped from the queue.
    private func releaseQueuedBytes(_ count: Int) {
        if let refused = queuedBytes.release(count) {
            logger.notice("sends accepted again: \(queuedBytes.queuedBytes) bytes queued by all connections, under half of \(queuedBytes.limit) (--max-queued-bytes); \(refused) send(s) were refused meanwhile")
        }
    }

    func cancelPending() -> Int32 {
        let (status, dropped) = queue.cancelPending(waitUnderWay: scheduledWait != nil)
        guard status == CYNIC_OK else { return status }
        releaseQueuedBytes(dropped)
        group.unsentChanged(self, unsent: queue.unsentBytes)
        scheduledWait?.cancel()
        scheduledWait = nil
        return CYNIC_OK
    }

    func log(_ level: Logger.Level, _ message: String) {
        logger.log(level: level, "\(message)", metadata: peerMetadata)
    }

    // MARK: Running the queue

    /// Calls into the plugin, then performs what it queued. Host functions check the depth; the
    /// watchdog hears of outermost calls only (a shaper's send inside a behaviour's conn_data is
    /// part of the conn_data).
    private func callPlugin(_ callback: PluginCallback, at position: Int = 0, _ body: () -> Void) {
        let outermost = callbackDepth == 0
        if outermost { markRunning(callback, at: position) }
        callbackDepth += 1
        body()
        callbackDepth -= 1
        if outermost { callbackSlot?.leave() }
        if callbackDepth == 0 { group.pumpAll() }
    }

    /// Tells the watchdog that `callback` of the plugin at `position` starts now.
    @inline(__always)
    private func markRunning(_ callback: PluginCallback, at position: Int) {
        callbackSlot?.enter(RunningCall(label: callbackLabels[position], callback: callback))
    }

    private var isIdle: Bool { queue.isIdle && callbackDepth == 0 }

    /// Starts queued actions until one has to wait (a write to flush, a timer) or the queue is
    /// empty; then hands the plugin what it was waiting for.
    func pump() {
        guard !pumping, let context else { return }
        pumping = true
        defer { pumping = false }
        var performed = 0
        var sent = 0
        while true {
            while let action = queue.next() {
                if case .send(let buffer) = action { sent += buffer.readableBytes }
                perform(action, context: context)
                performed += 1
                if performed >= Self.actionsPerTurn || sent >= Self.bytesPerTurn, !queue.isEmpty {
                    // Writes to a fast reader complete at once: without a break, one endless
                    // stream would keep every other connection of this event loop waiting.
                    context.eventLoop.assumeIsolated().execute { self.pump() }
                    return
                }
            }
            guard isIdle, !queue.isFinishing else { return }
            // Idle: hand the plugin what it was waiting for. What it queues is performed by the
            // next round of this loop (a nested pump would return at once: we are pumping).
            if !pendingRequests.isEmpty {
                deliverNextRequest()
            } else if peerClosed, !hasPeerClosedCallback {
                _ = queue.enqueue(.close)
            } else {
                return
            }
        }
    }

    private func perform(_ action: Action, context: ChannelHandlerContext) {
        if observer != nil { report(.performed(Self.traced(action))) }
        switch action {
        case .send(let buffer):
            let count = buffer.readableBytes
            context.writeAndFlush(wrapOutboundOut(buffer)).assumeIsolated().whenComplete { result in
                if case .success = result { self.counter.bytesOut &+= count }
                // NIO completes every write's promise once, written or failed (a closing channel
                // fails what it still holds), so the bytes come back exactly once, here, even after
                // the connection has ended. A failed write means the connection is going away;
                // channelInactive ends it.
                self.queue.finishedSend(of: count)
                self.releaseQueuedBytes(count)
                self.group.unsentChanged(self, unsent: self.queue.unsentBytes)
                self.pump()  // a no-op when the write completed inside the running pump
            }
        case .wait(let milliseconds):
            let delay = TimeAmount.milliseconds(Int64(clamping: milliseconds))
            scheduledWait = context.eventLoop.assumeIsolated().scheduleTask(in: delay) {
                self.scheduledWait = nil
                self.queue.finishedWaitOrShutdown()
                self.pump()
            }
        case .close:
            // After the client's FIN, the close answers it: the client ended the exchange, unless
            // our own FIN (a shutdown_write) went out first.
            if let shutFirstBy {
                ending = ending ?? ConnectionEnd(.closed, by: shutFirstBy)
            } else if peerClosed {
                ending = ending ?? ConnectionEnd(.peerClosed, by: .peer)
            } else {
                ending = ending ?? ConnectionEnd(.closed, by: origin(queuedCloseFrom))
            }
            context.close(promise: nil)
        case .reset:
            ending = ending ?? ConnectionEnd(.reset, by: origin(queuedCloseFrom))
            // SO_LINGER {1, 0} then close() makes the kernel send an RST instead of a FIN.
            if let socket = context.channel as? any SocketOptionProvider {
                _ = socket.setSoLinger(linger(l_onoff: 1, l_linger: 0))
            }
            // Under TLS the close goes below the TLS handler: an RST comes without a close_notify
            // before it, as from a server that dies.
            let below = try? context.pipeline.syncOperations.context(handlerType: NIOSSLServerHandler.self)
            (below ?? context).close(promise: nil)
        case .shutdownWrite:
            if !peerClosed, shutFirstBy == nil { shutFirstBy = origin(queuedShutdownFrom) }
            context.close(mode: .output).assumeIsolated().whenComplete { _ in
                self.queue.finishedWaitOrShutdown()
                self.pump()
            }
        case .stopReading:
            readingStopped = true
            updateReading()
        case .then(let tag):
            // Performed by the pump, never inside another callback: an outermost call.
            switch role {
            case .client:
                guard let onResume = callbacks.conn_resume else { return }
                callbackDepth += 1
                markRunning(.connResume, at: 0)
                onResume(state, conn, tag)
            case .upstream(let events, let upstreamState):
                guard let onResume = events.resume else { return }
                callbackDepth += 1
                markRunning(.upstreamResume, at: 0)
                onResume(upstreamState, conn, tag)
            }
            callbackSlot?.leave()
            callbackDepth -= 1
            // What it queued on the group's other connections; this one's own pump goes on.
            group.pumpAll()
        }
    }

    private func deliverNextRequest() {
        guard let request = pendingRequests.popFirst(), let onRequest = callbacks.conn_request else { return }
        updateReading()
        callPlugin(.connRequest) { request.withCRequest { onRequest(state, conn, $0) } }
    }

    private var hasPeerClosedCallback: Bool {
        switch role {
        case .client: callbacks.conn_peer_closed != nil
        case .upstream(let events, _): events.peer_closed != nil
        }
    }

    /// Reads from the socket unless the plugin stopped reading, requests are piling up, or
    /// another connection of the group has too much unsent (see `ConnectionGroup`).
    func updateReading() {
        let wanted = !readingStopped && pendingRequests.count < Self.maxPendingRequests && !group.isHeldBack(self)
        // Called for every request on a keep-alive connection: touch the channel only on a change.
        guard wanted != readingApplied, let options = context?.channel.syncOptions else { return }
        try? options.setOption(.autoRead, value: wanted)
        readingApplied = wanted
    }

    /// The connection is over: drop what was queued and let the plugin free its state, once.
    private func end(upstreamEnd: UInt32? = nil) {
        guard !ended else { return }
        // What NIO holds comes back when its write fails; what is still queued, now.
        releaseQueuedBytes(queue.end())
        // Never active (the channel failed before it opened): the plugin never saw it. An upstream
        // is the plugin's from `open` on.
        guard context != nil || (isUpstream && !handles.isEmpty) else { return }
        if !isUpstream {
            // Its upstreams end first, so the plugin frees their state before the client's; a
            // client that was reset passes the reset on.
            let passReset = resetByPeer || ending?.kind == .reset
            for member in group.members where member !== self {
                member.endBecauseClientEnded(reset: passReset)
            }
        }
        group.unsentChanged(self, unsent: queue.unsentBytes)
        pendingRequests.removeAll()
        scheduledWait?.cancel()
        scheduledWait = nil
        for timer in timers.values { timer.cancel() }
        timers.removeAll()
        let outermost = callbackDepth == 0
        switch role {
        case .client:
            markRunning(.connEnd, at: 0)
            // Inside a callback of the connection, as the header's rule says: its log lines are
            // tagged with the service; an action returns CYNIC_ERR_CLOSED (it has ended).
            callbackDepth += 1
            callbacks.conn_end?(state, conn)
            callbackDepth -= 1
            state = nil
        case .upstream(let events, let upstreamState):
            if outermost { markRunning(.upstreamEnded, at: 0) }
            // A callback like any: it may act on its client (reset it, say), performed below.
            callbackDepth += 1
            events.ended?(upstreamState, conn, upstreamEnd ?? howUpstreamEnded)
            callbackDepth -= 1
        }
        for (index, stage) in stages.enumerated() {
            if outermost { markRunning(.shaperConnEnd, at: index + 1) }
            stage.callbacks.conn_end?(stage.state)
        }
        if outermost { callbackSlot?.leave() }
        // A plugin that kept a handle past conn_end gets CYNIC_ERR_CLOSED, from any thread.
        for handle in handles { ConnectionHandles.release(handle) }
        group.leave(self)
        if !isUpstream {
            connections.closed()
            instance.plugin.connections.closed()
            if let channel = context?.channel { openChannels?.closed(channel) }
        }
        logger.debug(isUpstream ? "upstream connection closed" : "connection closed", metadata: peerMetadata)
        if isUpstream, callbackDepth == 0 { group.pumpAll() }
        if !isUpstream, observer != nil || recordContext != nil {
            let failure = group.lastConnectFailure.map { (address: $0.address, errno: $0.errno) }
            let end = ConnectionEnd.decide(ending, finSentFirstBy: shutFirstBy, peerClosed: peerClosed,
                                           serverStopping: ServerShutdown.isUnderWay, lastConnectFailure: failure)
            report(.ended(end))
            recordContext?.log.add(makeRecord(end))
        }
        context = nil
    }

    // MARK: Shapers changed while open

    /// toxiproxy's toxics apply to open connections: the shapers named go, the new ones join
    /// after the others, here and on every upstream of the group (and those it opens later).
    private func apply(_ reshape: Reshape) {
        guard !ended, context != nil, !isUpstream else { return }
        for name in reshape.removed { removeStage(named: name) }
        for shaper in reshape.downstream { appendStage(shaper) }
        upstreamShapers.removeAll { reshape.removed.contains($0.name) }
        upstreamShapers += reshape.upstream
        for member in group.members where member !== self {
            for name in reshape.removed { member.removeStage(named: name) }
            for shaper in reshape.upstream { member.appendStage(shaper) }
        }
        group.pumpAll()
    }

    private func appendStage(_ shaper: ServiceSetup.Shaper) {
        guard !ended, !handles.isEmpty, let callbacks = shaper.instance.plugin.shaper else { return }
        stages.append(ShaperStage(name: shaper.name, instance: shaper.instance, callbacks: callbacks, state: nil))
        let index = stages.count - 1
        handles.append(ConnectionHandles.acquire(self, position: index + 1))
        let service = logger[metadataKey: "service"].map { "\($0)" } ?? "none"
        callbackLabels.append(CallbackRegistry.shared.label(of: shaper.instance.plugin, service: service))
        callPlugin(.shaperConnOpen, at: index + 1) {
            stages[index].state = stages[index].callbacks.conn_open?(stages[index].instance.pointer, handles[index + 1])
        }
    }

    private func removeStage(named name: String) {
        guard !ended, let index = stages.firstIndex(where: { $0.name == name && !$0.isRemoved }) else { return }
        let stage = stages[index]
        stages[index] = stage.removed()
        callPlugin(.shaperConnEnd, at: index + 1) { stage.callbacks.conn_end?(stage.state) }
        // The shaper's handle goes stale (a late call gets CYNIC_ERR_CLOSED); its position passes on.
        ConnectionHandles.release(handles[index + 1])
        handles[index + 1] = ConnectionHandles.acquire(self, position: index + 1)
    }

    /// Who a close or reset queued from `position` comes from.
    private func origin(_ position: Int) -> ConnectionEnd.Origin {
        position == 0 ? .behaviour : .shaper(stages[position - 1].name)
    }

    /// The client's record, once its upstreams have ended and counted their bytes into the group.
    private func makeRecord(_ end: ConnectionEnd) -> ConnectionRecord {
        let context = recordContext!
        let upstream = group.upstreamsOpened > 0 ? ConnectionRecord.Upstream(
            connections: group.upstreamConnections, bytesIn: group.upstream.bytesIn, bytesOut: group.upstream.bytesOut,
            failed: group.failedConnects.map { .init(address: $0.address, error: $0.error) }) : nil
        return context.record(peer: peerAddress, client: .init(bytesIn: group.client.bytesIn, bytesOut: group.client.bytesOut),
                              upstream: upstream, started: startedWall, startedAt: startedAt, end: end)
    }

    // MARK: Upstream connections

    /// Opens a connection to `address` for this connection's group (cynic.connect/1): the new
    /// connection's handle at once, while connecting goes on; its events reach `events` with
    /// `eventState` on this event loop.
    func openUpstream(to address: UpstreamAddress, events: cynic_upstream_events,
                      eventState: UnsafeMutableRawPointer?) -> (status: Int32, handle: OpaquePointer?) {
        guard !ended, let loop else { return (CYNIC_ERR_CLOSED, nil) }
        // The group's client holds the upstream shapers (a call may come from an upstream's event).
        let client = group.members.first ?? self
        var upstreamLogger = logger
        upstreamLogger[metadataKey: "upstream"] = "\(address)"
        let upstream = ConnectionDriver(instance: instance, shapers: client.upstreamShapers, logger: upstreamLogger,
                                        connections: connections, queuedBytes: queuedBytes, warnings: warnings,
                                        role: .upstream(events: events, state: eventState), group: group)
        upstream.upstreamAddress = "\(address)"
        group.upstreamsOpened += 1
        upstream.loop = loop
        upstream.callbackSlot = callbackSlot
        upstream.handles = (0...upstream.stages.count).map { ConnectionHandles.acquire(upstream, position: $0) }
        // Its shapers open now, inside this callback: the plugin may queue on the new handle at once.
        for index in upstream.stages.indices {
            upstream.stages[index].state = upstream.stages[index].callbacks.conn_open?(
                upstream.stages[index].instance.pointer, upstream.handles[index + 1])
        }
        let bootstrap = ClientBootstrap(group: loop)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .connectTimeout(Self.upstreamConnectTimeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers(RawInput(counting: upstream.counter), upstream)
                }
            }
        let connecting: EventLoopFuture<any Channel>
        switch address {
        case .socket(let socketAddress): connecting = bootstrap.connect(to: socketAddress)
        case .named(let host, let port): connecting = bootstrap.connect(host: host, port: port)
        }
        connecting.assumeIsolated().whenFailure { error in upstream.connectFailed(error) }
        return (CYNIC_OK, upstream.handles[0])
    }

    /// How long an upstream may take to connect before `connect_failed` says ETIMEDOUT.
    static let upstreamConnectTimeout = TimeAmount.seconds(10)

    /// An upstream's connect failed: the plugin hears why, then the end.
    private func connectFailed(_ error: any Error) {
        guard !ended, case .upstream(let events, let upstreamState) = role else { return }
        let code = Self.errnoCode(of: error)
        logger.debug("upstream connect failed: \(String(cString: strerror(code)))")
        let failure = FailedConnect(address: upstreamAddress, errno: code)
        group.failedConnects.append(failure)
        group.lastConnectFailure = failure
        ending = ConnectionEnd(.error, by: .peer, reason: failure.error)
        // connect_failed then ended, before anything either queued on the client is performed:
        // the header promises `ended` follows, whatever connect_failed asked for.
        callbackDepth += 1
        if let onFailed = events.connect_failed {
            markRunning(.upstreamConnectFailed, at: 0)
            onFailed(upstreamState, conn, code)
            callbackSlot?.leave()
        }
        end(upstreamEnd: CYNIC_END_CONNECT_FAILED)
        callbackDepth -= 1
        if callbackDepth == 0 { group.pumpAll() }
    }

    /// The client ended: this upstream closes (or resets, passing a reset on) and the plugin hears
    /// its end before the client's.
    private func endBecauseClientEnded(reset: Bool) {
        guard !ended else { return }
        passesResetOnConnect = reset
        if let context {
            if reset, let socket = context.channel as? any SocketOptionProvider {
                _ = socket.setSoLinger(linger(l_onoff: 1, l_linger: 0))
            }
            context.close(promise: nil)
        }
        end(upstreamEnd: CYNIC_END_CLIENT_ENDED)
    }

    /// What an upstream's `ended` says, from how it ended.
    private var howUpstreamEnded: UInt32 {
        if resetByPeer { return CYNIC_END_RESET_BY_PEER }
        guard let ending else { return CYNIC_END_CLOSED }
        if ending.kind == .reset, ending.endedBy != .peer { return CYNIC_END_RESET }
        // An error on the socket after it was established: the header counts it as a reset.
        if ending.endedBy == .peer, ending.reason != nil { return CYNIC_END_RESET_BY_PEER }
        return CYNIC_END_CLOSED
    }

    private static func errnoCode(of error: any Error) -> Int32 {
        if let io = error as? IOError { return io.errnoCode }
        if let connection = error as? NIOConnectionError {
            for attempt in connection.connectionErrors {
                if let io = attempt.error as? IOError { return io.errnoCode }
            }
            if connection.dnsAError != nil || connection.dnsAAAAError != nil { return EHOSTUNREACH }
        }
        if let channel = error as? ChannelError, case .connectTimeout = channel { return ETIMEDOUT }
        return ECONNREFUSED
    }

    private static let allocator = ByteBufferAllocator()

    // MARK: Tracing

    /// Hands an event to the observer; builds nothing without one.
    private func report(_ kind: @autoclosure () -> ConnectionEvent.Kind) {
        guard let observer else { return }
        observer(ConnectionEvent(connection: number, kind: kind()))
    }

    private static func traced(_ action: Action) -> ConnectionAction {
        action.mapBytes { buffer in
            SentBytes(count: buffer.readableBytes,
                      preview: buffer.getBytes(at: buffer.readerIndex, length: min(buffer.readableBytes, ConnectionAction.previewLimit)) ?? [])
        }
    }

    /// "127.0.0.1:51234", "[::1]:51234", or a Unix socket's path.
    static func describe(_ address: SocketAddress) -> String {
        switch address {
        case .v4: "\(address.ipAddress ?? "?"):\(address.port ?? 0)"
        case .v6: "[\(address.ipAddress ?? "?")]:\(address.port ?? 0)"
        case .unixDomainSocket: address.pathname ?? "unix"
        }
    }
}

/// What reaches the driver from the pipeline: raw bytes, or a whole HTTP request.
enum ConnectionInput {
    case bytes(ByteBuffer)
    case request(CollectedRequest)
    /// The client sent something that is not HTTP we can hand on; the connection closes.
    case badRequest(String)
}
