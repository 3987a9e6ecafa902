import CCynicPlugin
import CynicConfig
import CynicPlugins
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A running service: a listener whose connections are driven by an instance of a behaviour.
///
/// The instance can be swapped while the service runs: each new connection takes the instance
/// current when it is accepted and keeps it to its end, so a new plugin generation takes new
/// connections while the old one finishes those it holds.
public final class Service: Sendable {
    public let spec: ServiceSpec
    private let group: any EventLoopGroup
    private let logger: Logger
    private let connections = ConnectionCounter()
    private let state: Mutex<State>

    private struct State: @unchecked Sendable {
        // @unchecked: `listener` is a Channel (Sendable); BehaviourInstance is Sendable. The
        // struct only lives inside the Mutex.
        var instance: BehaviourInstance?
        var listener: (any Channel)?
        var boundAddress: ServiceAddress
    }

    /// The limit on one HTTP request body the host holds for a plugin.
    public static let maxRequestBodyBytes = 1 << 20

    /// Checks the spec against its plugin, configures an instance and starts listening.
    /// Throws `ServiceError` with one line naming the service and what is wrong.
    public static func start(_ spec: ServiceSpec, plugins: PluginCatalog, group: any EventLoopGroup,
                             logger: Logger) async throws(ServiceError) -> Service {
        try await start(spec, plugins: plugins.plugins, group: group, logger: logger)
    }

    public static func start(_ spec: ServiceSpec, plugins: [String: Plugin], group: any EventLoopGroup,
                             logger: Logger) async throws(ServiceError) -> Service {
        try await start(spec, instance: try makeInstance(spec, plugins: plugins), group: group, logger: logger)
    }

    /// Starts listening with an instance made (and so checked) beforehand.
    public static func start(_ spec: ServiceSpec, instance: BehaviourInstance, group: any EventLoopGroup,
                             logger: Logger) async throws(ServiceError) -> Service {
        let service = Service(spec: spec, group: group, logger: logger)
        try await service.listen(with: instance)
        return service
    }

    /// An instance of the spec's behaviour configured with its parameters: everything about a
    /// service that can be wrong, checked without touching the network.
    public static func makeInstance(_ spec: ServiceSpec, plugins: [String: Plugin]) throws(ServiceError) -> BehaviourInstance {
        guard let plugin = plugins[spec.behaviour] else {
            let known = plugins.keys.sorted().joined(separator: ", ")
            throw ServiceError(spec, "unknown behaviour '\(spec.behaviour)' (available: \(known.isEmpty ? "none" : known))")
        }
        do {
            let values = try plugin.parameters.resolve(spec.parameters, behaviour: plugin.name)
            return try BehaviourInstance(plugin: plugin, values: values, host: HostTable.pointer)
        } catch {
            throw ServiceError(spec, error.description, origin: error.origin)
        }
    }

    private init(spec: ServiceSpec, group: any EventLoopGroup, logger: Logger) {
        self.spec = spec
        self.group = group
        var serviceLogger = logger
        serviceLogger[metadataKey: "service"] = "\(spec.name)"
        self.logger = serviceLogger
        state = Mutex(State(instance: nil, listener: nil, boundAddress: spec.address))
    }

    /// The address bound: with port 0 the kernel picks one, and a service that listens again
    /// after a pause takes the same one.
    public var boundAddress: ServiceAddress { state.withLock { $0.boundAddress } }
    /// The instance new connections get; nil while the service is suspended.
    public var instance: BehaviourInstance? { state.withLock { $0.instance } }
    public var isListening: Bool { state.withLock { $0.listener != nil } }
    /// Connections open now.
    public var openConnections: Int { connections.current }
    /// Connections accepted since start.
    public var acceptedConnections: Int { connections.accepted }

    /// New connections get `instance` from now on; returns the one they got before.
    @discardableResult
    public func swap(to instance: BehaviourInstance) -> BehaviourInstance? {
        state.withLock { state in
            let old = state.instance
            state.instance = instance
            return old
        }
    }

    /// Stops accepting (clients now get "connection refused"); open connections go on.
    public func suspend() async {
        let listener = state.withLock { state in
            state.instance = nil
            defer { state.listener = nil }
            return state.listener
        }
        try? await listener?.close()
    }

    /// Listens again, on the address it had, with `instance`.
    public func resume(with instance: BehaviourInstance) async throws(ServiceError) {
        guard !isListening else {
            swap(to: instance)
            return
        }
        try await listen(with: instance)
    }

    /// Stops accepting. Connections already open go on until they end.
    public func stop() async {
        await suspend()
    }

    private func listen(with instance: BehaviourInstance) async throws(ServiceError) {
        swap(to: instance)
        let address = boundAddress
        let channel: any Channel
        do {
            channel = try await bind(address)
        } catch {
            state.withLock { $0.instance = nil }
            throw ServiceError(spec, "cannot listen on \(address): \(Self.describe(error))")
        }
        state.withLock { state in
            state.listener = channel
            if case .tcp(let host, _) = address {
                state.boundAddress = .tcp(host: host, port: channel.localAddress?.port ?? 0)
            }
        }
    }

    private func bind(_ address: ServiceAddress) async throws -> any Channel {
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            // The plugin decides what a half-closed connection means (conn_peer_closed).
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    // The instance current at accept time serves this connection to its end.
                    guard let instance = self.instance else {
                        throw ChannelError.ioOnClosedChannel
                    }
                    let handlers = channel.pipeline.syncOperations
                    if instance.plugin.speaksHTTP1 {
                        try handlers.addHandler(ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)))
                        try handlers.addHandler(HTTPRequestAssembler(maxBodyBytes: Self.maxRequestBodyBytes))
                    } else {
                        try handlers.addHandler(RawInput())
                    }
                    try handlers.addHandler(ConnectionDriver(instance: instance, logger: self.logger,
                                                             connections: self.connections))
                }
            }
        switch address {
        case .tcp(let host, let port):
            return try await bootstrap.bind(host: host, port: port).get()
        case .unix(let path):
            return try await bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).get()
        }
    }

    private static func describe(_ error: any Error) -> String {
        if let io = error as? IOError {
            return io.errnoCode == EADDRINUSE ? "address already in use" : "\(io)"
        }
        return "\(error)"
    }
}

/// A service that cannot start, said in one line.
public struct ServiceError: Error, Sendable, CustomStringConvertible {
    public let message: String

    init(_ spec: ServiceSpec, _ reason: String, origin: String? = nil) {
        message = "\(origin ?? spec.origin): service '\(spec.name)': \(reason)"
    }

    public var description: String { message }
}
