import CCynicPlugin
import CynicConfig
import CynicPlugins
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// Counts a service's open connections, from any event loop.
final class ConnectionCounter: Sendable {
    private let open = Atomic<Int>(0)
    private let total = Atomic<Int>(0)

    func opened() {
        open.add(1, ordering: .relaxed)
        total.add(1, ordering: .relaxed)
    }

    func closed() { open.subtract(1, ordering: .relaxed) }

    var current: Int { open.load(ordering: .relaxed) }
    var accepted: Int { total.load(ordering: .relaxed) }
}

/// A running service: a listener whose connections are driven by one instance of a behaviour.
public final class Service: Sendable {
    public let spec: ServiceSpec
    public let instance: BehaviourInstance
    /// The address actually bound: with port 0 the kernel picks one.
    public let boundAddress: ServiceAddress
    private let channel: any Channel
    private let connections: ConnectionCounter

    /// The limit on one HTTP request body the host holds for a plugin.
    public static let maxRequestBodyBytes = 1 << 20

    /// Checks the spec against its plugin, configures an instance and starts listening.
    /// Throws `ServiceError` with one line naming the service and what is wrong.
    public static func start(_ spec: ServiceSpec, plugins: PluginCatalog, group: any EventLoopGroup,
                             logger: Logger) async throws(ServiceError) -> Service {
        guard let plugin = plugins.plugins[spec.behaviour] else {
            let known = plugins.sortedPlugins.map(\.name).joined(separator: ", ")
            throw ServiceError(spec, "unknown behaviour '\(spec.behaviour)' (available: \(known.isEmpty ? "none" : known))")
        }
        let instance: BehaviourInstance
        do {
            let values = try plugin.parameters.resolve(spec.parameters, behaviour: plugin.name)
            instance = try BehaviourInstance(plugin: plugin, values: values, host: HostTable.pointer)
        } catch {
            throw ServiceError(spec, error.description, origin: error.origin)
        }
        var serviceLogger = logger
        serviceLogger[metadataKey: "service"] = "\(spec.name)"
        let connections = ConnectionCounter()
        let channel: any Channel
        do {
            channel = try await bind(spec.address, instance: instance, group: group,
                                     logger: serviceLogger, connections: connections)
        } catch {
            throw ServiceError(spec, "cannot listen on \(spec.address): \(Self.describe(error))")
        }
        return Service(spec: spec, instance: instance, channel: channel, connections: connections)
    }

    private init(spec: ServiceSpec, instance: BehaviourInstance, channel: any Channel, connections: ConnectionCounter) {
        self.spec = spec
        self.instance = instance
        self.channel = channel
        self.connections = connections
        switch spec.address {
        case .tcp(let host, _):
            boundAddress = .tcp(host: host, port: channel.localAddress?.port ?? 0)
        case .unix:
            boundAddress = spec.address
        }
    }

    /// Connections open now.
    public var openConnections: Int { connections.current }
    /// Connections accepted since start.
    public var acceptedConnections: Int { connections.accepted }

    /// Stops accepting. Connections already open go on until they end.
    public func stop() async {
        try? await channel.close()
    }

    private static func bind(_ address: ServiceAddress, instance: BehaviourInstance, group: any EventLoopGroup,
                             logger: Logger, connections: ConnectionCounter) async throws -> any Channel {
        let speaksHTTP1 = instance.plugin.speaksHTTP1
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            // The plugin decides what a half-closed connection means (conn_peer_closed).
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let handlers = channel.pipeline.syncOperations
                    if speaksHTTP1 {
                        try handlers.addHandler(ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)))
                        try handlers.addHandler(HTTPRequestAssembler(maxBodyBytes: maxRequestBodyBytes))
                    } else {
                        try handlers.addHandler(RawInput())
                    }
                    try handlers.addHandler(ConnectionDriver(instance: instance, logger: logger, connections: connections))
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
