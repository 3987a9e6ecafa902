import CCynicPlugin

/// The state of one service: a behaviour with its parameters, made by the host's `create`.
///
/// The kit keeps it alive from `create` to `destroy`. Once configured it is shared by connections
/// running on several threads at once: only read it from then on.
public protocol Behaviour: AnyObject {
    /// Called on `create`, before the configure function sets the parameters.
    init()
    /// A connection was accepted: queue its first actions, and return what handles the rest.
    /// The handler is released after its `end()`.
    func open(_ conn: Connection) -> any ConnectionHandler
}

/// What happens on one connection. Its calls never overlap, and all run on the connection's
/// thread, so a handler made per connection may keep mutable state without locks.
///
/// Every method has a default, so implement only those the behaviour needs.
public protocol ConnectionHandler: AnyObject {
    /// A complete HTTP request arrived (HTTP behaviours only). The host hands the next request of a
    /// keep-alive connection once every action queued for this one is done. Default: nothing.
    func request(_ request: HTTPRequest, on conn: Connection)
    /// Bytes arrived (raw behaviours only); `bytes` is valid only during the call. Default: discard.
    func data(_ bytes: UnsafeRawBufferPointer, on conn: Connection)
    /// The `then(tag)` queued earlier was reached. Default: nothing.
    func resume(tag: UInt64, on conn: Connection)
    /// A timer set with `Connection.after(milliseconds:tag:)` fired. Default: nothing.
    func timer(tag: UInt64, on conn: Connection)
    /// The peer closed its sending side. Default: close once the queued actions are done, as the
    /// host does for a C plugin without `conn_peer_closed` — including those a pending `then`
    /// leads to, so a response being streamed still completes.
    func peerClosed(on conn: Connection)
    /// The connection is over; no action may be asked any more. Default: nothing.
    func end()
}

extension ConnectionHandler {
    public func request(_ request: HTTPRequest, on conn: Connection) {}
    public func data(_ bytes: UnsafeRawBufferPointer, on conn: Connection) {}
    public func resume(tag: UInt64, on conn: Connection) {}
    public func timer(tag: UInt64, on conn: Connection) {}
    public func peerClosed(on conn: Connection) { conn.closeWhenStreamed() }
    public func end() {}
}

extension Behaviour where Self: ConnectionHandler {
    /// A behaviour that keeps nothing per connection handles its connections itself. It is shared
    /// by every connection, on several threads: it must not change its own state there.
    public func open(_ conn: Connection) -> any ConnectionHandler { self }
}

extension Behaviour {
    /// The behaviour behind the `instance` pointer the host gives the configure function.
    public static func from(_ instance: UnsafeMutableRawPointer?) -> Self {
        ServiceInstance.from(instance).behaviour as! Self
    }

    /// Runs `apply` on the behaviour behind `instance` and returns what the configure function
    /// returns: NULL, or the message of the error `apply` threw, kept until the instance is
    /// destroyed.
    ///
    ///     let configure: @convention(c) (UnsafeMutableRawPointer?, UInt32) -> UnsafePointer<CChar>? = {
    ///         instance, interval in
    ///         Slow.configure(instance) { $0.interval = interval }
    ///     }
    public static func configure(_ instance: UnsafeMutableRawPointer?,
                                 _ apply: (Self) throws -> Void) -> UnsafePointer<CChar>? {
        let service = ServiceInstance.from(instance)
        do {
            try apply(service.behaviour as! Self)
            return nil
        } catch {
            return service.keep(message: String(describing: error))
        }
    }
}

/// A parameter value the configure function refuses; the message is shown to the user as is.
public struct ConfigurationError: Error, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
