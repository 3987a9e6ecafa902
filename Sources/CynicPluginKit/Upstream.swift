import CCynicPlugin

/// A connection the host opened on behalf of a client connection, to a real server (capability
/// "cynic.connect/1" in `cynic/plugin.h`). Open one with `Connection.openUpstream(_:handler:)`.
///
/// Actions are queued and performed in order, as on the client; those asked before the connection
/// is established wait for it. Its events reach the `UpstreamHandler` on the client's thread, never
/// overlapping a callback of the client or of its other upstreams: a handler may share state with
/// the client's `ConnectionHandler` (or be the same object) without locks, and may use the client's
/// `Connection` from them. Valid until the handler's `ended(_:on:)` returns, only inside a callback
/// of the client or of one of its upstreams.
public struct Upstream {
    /// The host's handle, for calling the host table directly.
    public let pointer: OpaquePointer
    /// The host's function table.
    public let host: UnsafePointer<cynic_host>

    init(_ pointer: OpaquePointer, host: UnsafePointer<cynic_host>) {
        self.pointer = pointer
        self.host = host
    }

    /// Queues `bytes` to send to the server; copied before this returns.
    @discardableResult
    public func send(_ bytes: some Collection<UInt8>) -> Int32 { sendBytes(bytes, host: host, conn: pointer) }

    /// Queues a pause before the next action.
    @discardableResult
    public func wait(milliseconds: UInt64) -> Int32 { host.pointee.wait(pointer, milliseconds) }

    /// Queues an orderly close (FIN); `ended(.closed, ...)` follows.
    @discardableResult
    public func close() -> Int32 { host.pointee.close(pointer) }

    /// Queues an abortive close: the server gets a TCP RST.
    @discardableResult
    public func reset() -> Int32 { host.pointee.reset(pointer) }

    /// Queues `shutdown(SHUT_WR)`: the server reads EOF, and may still answer.
    @discardableResult
    public func shutdownWrite() -> Int32 { host.pointee.shutdown_write(pointer) }

    /// Queues: stop reading from the server; its writes eventually block.
    @discardableResult
    public func stopReading() -> Int32 { host.pointee.stop_reading(pointer) }

    /// Queues a call back to the handler's `resume(tag:on:)` once every action before it is done.
    @discardableResult
    public func then(_ tag: UInt64) -> Int32 { host.pointee.then(pointer, tag) }

    /// Drops every queued action not yet started.
    @discardableResult
    public func cancelPending() -> Int32 { host.pointee.cancel_pending(pointer) }

    /// Not queued: in `milliseconds`, calls the handler's `timer(tag:on:)`, unless the connection
    /// has ended. `CYNIC_ERR_INVALID` from a host whose table ends before `after`.
    @discardableResult
    public func after(milliseconds: UInt64, tag: UInt64) -> Int32 {
        setTimer(host: host, conn: pointer, milliseconds: milliseconds, tag: tag)
    }

    /// Writes a line to cynic's console, tagged with this connection.
    public func log(_ level: LogLevel, _ message: String) { host.pointee.log(pointer, level.rawValue, message) }
}

/// How an upstream connection ended (`CYNIC_END_*`).
public enum UpstreamEnd: Equatable, Sendable {
    /// Closed in order: by the plugin, or by the server after its FIN.
    case closed
    /// The server sent an RST, or the connection failed after it was established.
    case resetByPeer
    /// Reset by the plugin.
    case reset
    /// Never established: `connectFailed(errno:on:)` said why.
    case connectFailed
    /// Its client connection ended first.
    case clientEnded
    /// A value this kit does not know, from a newer host.
    case other(UInt32)

    init(_ how: UInt32) {
        switch how {
        case CYNIC_END_CLOSED: self = .closed
        case CYNIC_END_RESET_BY_PEER: self = .resetByPeer
        case CYNIC_END_RESET: self = .reset
        case CYNIC_END_CONNECT_FAILED: self = .connectFailed
        case CYNIC_END_CLIENT_ENDED: self = .clientEnded
        default: self = .other(how)
        }
    }
}

/// What a plugin hears of an upstream connection it opened; every method has a default. The kit
/// keeps the handler alive until `ended(_:on:)` returns.
public protocol UpstreamHandler: AnyObject {
    /// The connection is established; what was queued on it is performed from now on.
    func connected(_ upstream: Upstream)
    /// It could not be established: `errno` is ECONNREFUSED, ETIMEDOUT, ENOENT (a missing Unix
    /// socket)... `ended(.connectFailed, ...)` follows, and what was queued is dropped.
    func connectFailed(errno: Int32, on upstream: Upstream)
    /// Bytes arrived from the server; valid only during the call.
    func data(_ bytes: UnsafeRawBufferPointer, from upstream: Upstream)
    /// The server shut down its writing: no more data will come. Default: close once the queue is
    /// done, as the host does without this callback.
    func peerClosed(_ upstream: Upstream)
    /// A `then` queued on the upstream was reached.
    func resume(tag: UInt64, on upstream: Upstream)
    /// A timer set with `Upstream.after(milliseconds:tag:)` fired.
    func timer(tag: UInt64, on upstream: Upstream)
    /// The connection is over; the handle is stale once this returns.
    func ended(_ how: UpstreamEnd, on upstream: Upstream)
}

extension UpstreamHandler {
    public func connected(_ upstream: Upstream) {}
    public func connectFailed(errno: Int32, on upstream: Upstream) {}
    public func data(_ bytes: UnsafeRawBufferPointer, from upstream: Upstream) {}
    public func peerClosed(_ upstream: Upstream) { upstream.close() }
    public func resume(tag: UInt64, on upstream: Upstream) {}
    public func timer(tag: UInt64, on upstream: Upstream) {}
    public func ended(_ how: UpstreamEnd, on upstream: Upstream) {}
}

/// Why `Connection.openUpstream(_:handler:)` opened nothing.
public enum OpenUpstreamError: Error, Equatable, CustomStringConvertible {
    /// The host has no "cynic.connect/1": an older cynic.
    case unsupported
    /// The host refused: `CYNIC_ERR_INVALID` for an address it cannot read, `CYNIC_ERR_CLOSED` or
    /// `CYNIC_ERR_THREAD` as for any call on the client.
    case refused(status: Int32)

    public var description: String {
        switch self {
        case .unsupported: "this cynic cannot open upstream connections (no cynic.connect/1)"
        case .refused(let status): "the host refused to open an upstream connection (status \(status))"
        }
    }
}

extension Connection {
    /// Asks the host to open a connection to `address` ("host:port", "[::1]:5432" or
    /// "unix:/path") on behalf of this client; connecting goes on in the background, and the
    /// returned upstream takes actions at once. `handler` hears its events.
    public func openUpstream(_ address: String, handler: any UpstreamHandler) throws(OpenUpstreamError) -> Upstream {
        guard let connect = ConnectCapability.of(host) else { throw .unsupported }
        let state = Unmanaged.passRetained(UpstreamState(handler: handler, host: host))
        var handle: OpaquePointer?
        let status = address.withCString { connect.pointee.open(pointer, $0, upstreamEvents.table, state.toOpaque(), &handle) }
        guard status == CYNIC_OK, let handle else {
            state.release() // no `ended` will come for a connection never opened
            throw .refused(status: status)
        }
        return Upstream(handle, host: host)
    }
}

/// The host's "cynic.connect/1", when it has one.
public enum ConnectCapability {
    /// The capability of `host`, or nil when the host is older or its struct ends before `open`.
    public static func of(_ host: UnsafePointer<cynic_host>) -> UnsafePointer<cynic_connect>? {
        guard let raw = host.pointee.get_extension(CYNIC_CONNECT_ID) else { return nil }
        let connect = raw.assumingMemoryBound(to: cynic_connect.self)
        let end = MemoryLayout<cynic_connect>.offset(of: \.open)! + MemoryLayout<UnsafeRawPointer>.size
        guard connect.pointee.struct_size >= end, connect.pointee.open != nil else { return nil }
        return connect
    }

    /// For a configure function: whether the host of `instance` can open upstream connections, so
    /// a service that needs them is refused at start rather than failing each client.
    public static func available(for instance: UnsafeMutableRawPointer?) -> Bool {
        of(ServiceInstance.from(instance).host) != nil
    }
}

// MARK: - The C side

/// What the `state` pointer of an upstream's events points at: retained from `open` until `ended`.
final class UpstreamState {
    let handler: any UpstreamHandler
    let host: UnsafePointer<cynic_host>

    init(handler: any UpstreamHandler, host: UnsafePointer<cynic_host>) {
        self.handler = handler
        self.host = host
    }

    static func from(_ state: UnsafeMutableRawPointer?) -> UpstreamState {
        Unmanaged<UpstreamState>.fromOpaque(state!).takeUnretainedValue()
    }

    func upstream(_ conn: OpaquePointer?) -> Upstream { Upstream(conn!, host: host) }
}

/// One events table for every upstream of every Swift plugin image: the `state` tells them apart.
/// It must outlive every upstream connection, and a Swift image is never unloaded.
private struct UpstreamEventsTable: @unchecked Sendable { // the pointee is never written after init
    let table: UnsafePointer<cynic_upstream_events>

    init() {
        var events = cynic_upstream_events()
        events.abi_version = CYNIC_ABI_VERSION
        events.struct_size = UInt32(MemoryLayout<cynic_upstream_events>.size)
        events.connected = { state, conn in
            let state = UpstreamState.from(state)
            state.handler.connected(state.upstream(conn))
        }
        events.connect_failed = { state, conn, error in
            let state = UpstreamState.from(state)
            state.handler.connectFailed(errno: error, on: state.upstream(conn))
        }
        events.data = { state, conn, bytes, length in
            let state = UpstreamState.from(state)
            state.handler.data(UnsafeRawBufferPointer(start: bytes, count: length), from: state.upstream(conn))
        }
        events.peer_closed = { state, conn in
            let state = UpstreamState.from(state)
            state.handler.peerClosed(state.upstream(conn))
        }
        events.resume = { state, conn, tag in
            let state = UpstreamState.from(state)
            state.handler.resume(tag: tag, on: state.upstream(conn))
        }
        events.timer = { state, conn, tag in
            let state = UpstreamState.from(state)
            state.handler.timer(tag: tag, on: state.upstream(conn))
        }
        events.ended = { state, conn, how in
            let retained = Unmanaged<UpstreamState>.fromOpaque(state!)
            let state = retained.takeUnretainedValue()
            state.handler.ended(UpstreamEnd(how), on: state.upstream(conn))
            retained.release()
        }
        let storage = UnsafeMutablePointer<cynic_upstream_events>.allocate(capacity: 1)
        storage.initialize(to: events)
        table = UnsafePointer(storage)
    }
}

private let upstreamEvents = UpstreamEventsTable()
