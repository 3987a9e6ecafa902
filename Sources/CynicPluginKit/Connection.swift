import CCynicPlugin

/// One client connection, as a plugin sees it: the host queues the actions asked here and performs
/// them in order (see "The host's function table" in `cynic/plugin.h`).
///
/// Valid only inside a callback for this connection, on its thread: do not keep it, or hand it to
/// another thread (the host refuses with `CYNIC_ERR_THREAD`). Each action returns `CYNIC_OK` once
/// queued, or a `CYNIC_ERR_*` code; most callers can ignore it, since a connection that has ended
/// will soon get its `end()` anyway.
public struct Connection {
    /// The host's handle, for calling the host table directly.
    public let pointer: OpaquePointer
    /// The host's function table.
    public let host: UnsafePointer<cynic_host>
    /// The kit's bookkeeping for this connection, to close after a streamed response.
    let state: ConnectionState

    init(_ pointer: OpaquePointer, host: UnsafePointer<cynic_host>, state: ConnectionState) {
        self.pointer = pointer
        self.host = host
        self.state = state
    }

    /// Queues `bytes` to send; they are copied before this returns.
    @discardableResult
    public func send(_ bytes: some Collection<UInt8>) -> Int32 {
        sendBytes(bytes, host: host, conn: pointer)
    }

    /// Queues the UTF-8 bytes of `text` to send.
    @discardableResult
    public func send(_ text: String) -> Int32 {
        send(text.utf8)
    }

    /// Queues a pause before the next action.
    @discardableResult
    public func wait(milliseconds: UInt64) -> Int32 {
        host.pointee.wait(pointer, milliseconds)
    }

    /// Queues an orderly close (FIN) of both directions.
    @discardableResult
    public func close() -> Int32 {
        host.pointee.close(pointer)
    }

    /// Queues an abortive close: the peer gets a TCP RST.
    @discardableResult
    public func reset() -> Int32 {
        host.pointee.reset(pointer)
    }

    /// Queues `shutdown(SHUT_WR)`: the peer reads EOF; the connection stays open for reading.
    @discardableResult
    public func shutdownWrite() -> Int32 {
        host.pointee.shutdown_write(pointer)
    }

    /// Queues: stop reading from the socket, so the peer's writes eventually block.
    @discardableResult
    public func stopReading() -> Int32 {
        host.pointee.stop_reading(pointer)
    }

    /// Queues a call back to `resume(tag:on:)` once every action queued before it is done: the way
    /// to stream without holding everything at once.
    @discardableResult
    public func then(_ tag: UInt64) -> Int32 {
        let status = host.pointee.then(pointer, tag)
        if status == CYNIC_OK { state.resumesDue += 1 }
        return status
    }

    /// Drops every queued action not yet started; a `wait` in progress ends now.
    @discardableResult
    public func cancelPending() -> Int32 {
        let status = host.pointee.cancel_pending(pointer)
        if status == CYNIC_OK { state.resumesDue = 0 }
        return status
    }

    /// Not queued: in `milliseconds`, calls the handler's `timer(tag:on:)`, whatever the queue is
    /// doing then, unless the connection has ended. A timer cannot be cancelled, so give each a
    /// tag that lets the handler tell when it has gone stale. `CYNIC_ERR_INVALID` from a host
    /// whose table ends before `after`.
    @discardableResult
    public func after(milliseconds: UInt64, tag: UInt64) -> Int32 {
        setTimer(host: host, conn: pointer, milliseconds: milliseconds, tag: tag)
    }

    /// Closes once the response under way is out: now when no `then` is pending, else after the
    /// `resume` that queues nothing more. A close queued now would come before the pieces a
    /// stream's later `resume`s send, and cut it short.
    func closeWhenStreamed() {
        guard state.resumesDue > 0 else {
            close()
            return
        }
        state.closeAfterStream = true
    }

    /// Writes a line to cynic's console, tagged with the service and this connection.
    public func log(_ level: LogLevel, _ message: String) {
        host.pointee.log(pointer, level.rawValue, message)
    }
}

/// The level of a line written with `Connection.log(_:_:)`.
public enum LogLevel: UInt32, Sendable {
    case debug = 0, info = 1, warning = 2, error = 3 // CYNIC_LOG_*
}

// Shared by `Connection` and `Upstream`: the host table takes either handle alike.

/// `host->send` of any collection, copied to contiguous storage only when it is not already.
func sendBytes(_ bytes: some Collection<UInt8>, host: UnsafePointer<cynic_host>, conn: OpaquePointer) -> Int32 {
    let status = bytes.withContiguousStorageIfAvailable { buffer in
        host.pointee.send(conn, buffer.baseAddress, buffer.count)
    }
    return status ?? Array(bytes).withUnsafeBufferPointer { buffer in
        host.pointee.send(conn, buffer.baseAddress, buffer.count)
    }
}

/// `host->after`, or `CYNIC_ERR_INVALID` from a host whose table ends before it.
func setTimer(host: UnsafePointer<cynic_host>, conn: OpaquePointer, milliseconds: UInt64, tag: UInt64) -> Int32 {
    let end = MemoryLayout<cynic_host>.offset(of: \.after)! + MemoryLayout<UnsafeRawPointer>.size
    guard host.pointee.struct_size >= end, let after = host.pointee.after else {
        return CYNIC_ERR_INVALID
    }
    return after(conn, milliseconds, tag)
}
