// Re-exported: a plugin names `cynic_plugin` and `cynic_any_fn` with `import CynicPluginKit` alone.
@_exported import CCynicPlugin

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A plugin's C descriptor, filled from Swift. Make one in a global and return its pointer from the
/// entry symbol:
///
///     private let plugin = PluginDescriptor(name: "hello", defaultPort: 2000, http: true,
///                                           behaviour: Hello.self)
///
///     @_cdecl("cynic_plugin_entry")
///     public func cynicPluginEntry() -> UnsafePointer<cynic_plugin> { plugin.pointer }
///
/// The descriptor and its strings are never freed: they must stay valid while the image is mapped,
/// and a Swift plugin's image is never unloaded. One descriptor per plugin image.
public struct PluginDescriptor: @unchecked Sendable { // the pointee is never written after init
    public let pointer: UnsafePointer<cynic_plugin>

    /// - Parameters:
    ///   - configure: the typed `const char *configure(void *instance, T1, ..., Tn)`, written as a
    ///     `@convention(c)` closure and passed as `unsafeBitCast(configure, to: cynic_any_fn.self)`;
    ///     required when there are parameters. See `Behaviour.configure(_:_:)`.
    ///   - behaviour: made on each `create`, released on `destroy`.
    public init(name: String, description: String? = nil, defaultPort: UInt16 = 0,
                http: Bool = false, params: [Parameter] = [], configure: cynic_any_fn? = nil,
                behaviour: any Behaviour.Type) {
        registeredBehaviour = behaviour

        var plugin = cynic_plugin()
        plugin.abi_version = CYNIC_ABI_VERSION
        plugin.struct_size = UInt32(MemoryLayout<cynic_plugin>.size)
        plugin.name = UnsafePointer(strdup(name))
        plugin.description = description.map { UnsafePointer(strdup($0)) }
        plugin.default_port = defaultPort
        plugin.flags = http ? CYNIC_PLUGIN_HTTP1 : 0
        plugin.params = Self.cParameters(params)
        plugin.param_count = UInt32(params.count)
        plugin.configure = configure
        plugin.create = kitCreate
        plugin.destroy = kitDestroy
        plugin.conn_open = kitConnOpen
        plugin.conn_data = kitConnData
        plugin.conn_request = kitConnRequest
        plugin.conn_resume = kitConnResume
        plugin.conn_peer_closed = kitConnPeerClosed
        plugin.conn_end = kitConnEnd
        plugin.conn_timer = kitConnTimer

        let storage = UnsafeMutablePointer<cynic_plugin>.allocate(capacity: 1)
        storage.initialize(to: plugin)
        pointer = UnsafePointer(storage)
    }

    private static func cParameters(_ params: [Parameter]) -> UnsafePointer<cynic_param>? {
        guard !params.isEmpty else { return nil }
        let storage = UnsafeMutableBufferPointer<cynic_param>.allocate(capacity: params.count)
        _ = storage.initialize(from: params.map { param in
            cynic_param(name: strdup(param.name), type: param.type.rawValue,
                        default_value: param.defaultValue.map { strdup($0) },
                        doc: param.doc.map { strdup($0) })
        })
        return UnsafePointer(storage.baseAddress)
    }
}

/// One declared parameter; the host passes its value to the configure function as `type`.
public struct Parameter: Sendable {
    public var name: String
    public var type: ParameterType
    /// As a user would write it; nil makes a non-string parameter required.
    public var defaultValue: String?
    /// One line for `cynic plugins`.
    public var doc: String?

    public init(_ name: String, _ type: ParameterType, default defaultValue: String? = nil,
                doc: String? = nil) {
        self.name = name
        self.type = type
        self.defaultValue = defaultValue
        self.doc = doc
    }
}

/// A parameter's C type, and the Swift type the configure closure takes for it.
public enum ParameterType: UInt32, Sendable {
    case bool = 1   // Bool
    case int32 = 2  // Int32
    case int64 = 3  // Int64
    case uint32 = 4 // UInt32
    case uint64 = 5 // UInt64
    case double = 6 // Double
    case string = 7 // UnsafePointer<CChar>?
}

// MARK: - The C side

// The C callbacks cannot capture anything, so `create` finds the type to make here. Written once,
// by the descriptor's initialiser, on the control thread before the host calls `create` there.
nonisolated(unsafe) private var registeredBehaviour: (any Behaviour.Type)?

/// What the instance pointer points at: the behaviour, the host table, a configure error.
final class ServiceInstance {
    let behaviour: any Behaviour
    let host: UnsafePointer<cynic_host>
    private var message: UnsafeMutablePointer<CChar>?

    init(behaviour: any Behaviour, host: UnsafePointer<cynic_host>) {
        self.behaviour = behaviour
        self.host = host
    }

    deinit { free(message) }

    static func from(_ instance: UnsafeMutableRawPointer?) -> ServiceInstance {
        Unmanaged<ServiceInstance>.fromOpaque(instance!).takeUnretainedValue()
    }

    /// A C copy of `text`, valid until the instance is destroyed.
    func keep(message text: String) -> UnsafePointer<CChar>? {
        free(message)
        message = strdup(text)
        return UnsafePointer(message)
    }
}

/// What the per-connection state pointer points at.
final class ConnectionState {
    /// Set as soon as the behaviour's `open` returns it.
    private(set) var handler: (any ConnectionHandler)!
    let host: UnsafePointer<cynic_host>
    /// `then`s queued through `Connection` whose `resume` has not come yet: while there are, a
    /// response may still be streaming.
    var resumesDue = 0
    /// The peer closed while a response was streaming: close once no `resume` is due any more.
    var closeAfterStream = false

    init(host: UnsafePointer<cynic_host>) {
        self.host = host
    }

    static func from(_ state: UnsafeMutableRawPointer?) -> ConnectionState {
        Unmanaged<ConnectionState>.fromOpaque(state!).takeUnretainedValue()
    }

    func connection(_ conn: OpaquePointer?) -> Connection {
        Connection(conn!, host: host, state: self)
    }

    func open(_ behaviour: any Behaviour, _ conn: OpaquePointer?) {
        handler = behaviour.open(connection(conn))
    }

    /// The handler's last call. It is let go here, not when this state is freed: a handler that
    /// keeps its `Connection` (to act on the client from its upstreams' events) holds this state,
    /// and the two would keep each other alive.
    func end() {
        handler.end()
        handler = nil
    }

    func resume(tag: UInt64, _ conn: OpaquePointer?) {
        resumesDue = max(resumesDue - 1, 0) // a `then` queued with the host table directly is not counted
        handler.resume(tag: tag, on: connection(conn))
        if closeAfterStream, resumesDue == 0 {
            closeAfterStream = false
            connection(conn).close()
        }
    }
}

private let kitCreate: @convention(c) (UnsafePointer<cynic_host>?) -> UnsafeMutableRawPointer? = { host in
    let instance = ServiceInstance(behaviour: registeredBehaviour!.init(), host: host!)
    return Unmanaged.passRetained(instance).toOpaque()
}

private let kitDestroy: @convention(c) (UnsafeMutableRawPointer?) -> Void = { instance in
    Unmanaged<ServiceInstance>.fromOpaque(instance!).release()
}

private let kitConnOpen: @convention(c) (UnsafeMutableRawPointer?, OpaquePointer?) -> UnsafeMutableRawPointer? = {
    instance, conn in
    let service = ServiceInstance.from(instance)
    let state = ConnectionState(host: service.host)
    state.open(service.behaviour, conn)
    return Unmanaged.passRetained(state).toOpaque()
}

private let kitConnData: @convention(c) (UnsafeMutableRawPointer?, OpaquePointer?, UnsafePointer<UInt8>?, Int) -> Void = {
    state, conn, bytes, length in
    let state = ConnectionState.from(state)
    state.handler.data(UnsafeRawBufferPointer(start: bytes, count: length), on: state.connection(conn))
}

private let kitConnRequest: @convention(c) (UnsafeMutableRawPointer?, OpaquePointer?, UnsafePointer<cynic_http_request>?) -> Void = {
    state, conn, request in
    let state = ConnectionState.from(state)
    state.handler.request(HTTPRequest(request!.pointee), on: state.connection(conn))
}

private let kitConnResume: @convention(c) (UnsafeMutableRawPointer?, OpaquePointer?, UInt64) -> Void = {
    state, conn, tag in
    ConnectionState.from(state).resume(tag: tag, conn)
}

private let kitConnTimer: @convention(c) (UnsafeMutableRawPointer?, OpaquePointer?, UInt64) -> Void = {
    state, conn, tag in
    let state = ConnectionState.from(state)
    state.handler.timer(tag: tag, on: state.connection(conn))
}

private let kitConnPeerClosed: @convention(c) (UnsafeMutableRawPointer?, OpaquePointer?) -> Void = {
    state, conn in
    let state = ConnectionState.from(state)
    state.handler.peerClosed(on: state.connection(conn))
}

private let kitConnEnd: @convention(c) (UnsafeMutableRawPointer?, OpaquePointer?) -> Void = { state, _ in
    let state = Unmanaged<ConnectionState>.fromOpaque(state!)
    state.takeUnretainedValue().end()
    state.release()
}
