import CCynicPlugin
import CynicConfig
import CynicPlugins
import CynicTLS
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

/// What a service's new connections get: an instance of its behaviour, and an instance of each of
/// its shapers with the probability that it applies to a connection.
public final class ServiceSetup: Sendable {
    public struct Shaper: Sendable {
        /// Its name in the service (`ShaperSpec.name`).
        public let name: String
        public let instance: BehaviourInstance
        public let probability: Double
        /// Whether it shapes what is sent to the client or on the upstream connections.
        public let direction: ShaperDirection
    }

    public let behaviour: BehaviourInstance
    public let shapers: [Shaper]
    /// The context that terminates TLS for each connection, the behaviour seeing plaintext; nil
    /// for plain TCP.
    public let tls: NIOSSLContext?

    public init(behaviour: BehaviourInstance, shapers: [Shaper], tls: NIOSSLContext? = nil) {
        self.behaviour = behaviour
        self.shapers = shapers
        self.tls = tls
    }
}

/// A running service: a listener whose connections are driven by an instance of a behaviour,
/// through its shapers.
///
/// The setup can be swapped while the service runs: each new connection takes the setup current
/// when it is accepted and keeps it to its end, so a new plugin generation takes new connections
/// while the old one finishes those it holds. A reloaded configuration can hand the listener
/// over to a changed spec (even a renamed service) the same way.
public final class Service: Sendable {
    private let group: any EventLoopGroup
    /// Without the service's name: that comes from the current spec.
    private let baseLogger: Logger
    private let connections = ConnectionCounter()
    /// Hears every event of every connection, when given (see `ConnectionEvent`).
    private let observer: ConnectionObserver?
    /// The last connection number handed to the observer.
    private let connectionNumbers = Atomic<Int>(0)
    private let state: Mutex<State>
    /// Decides, connection by connection, which shapers apply (SplitMix64 state).
    private let draws: Mutex<UInt64>
    /// The bound on the bytes queued by all connections, shared with every other service.
    private let queuedBytes: QueuedBytesBudget
    /// Warnings each client can cause (a bad request), said once per window with a count.
    private let warnings: LogThrottle
    /// Gets a record of every client connection as it ends, when given.
    private let events: ConnectionEventLog?
    private let openChannels = OpenChannels()
    /// The bounds on what its clients can make it hold; its spec's `maxConnections` wins.
    private let limits: ServiceLimits
    /// Its connections from accept to close, against the bound.
    private let admission = ConnectionAdmission()

    private struct State: @unchecked Sendable {
        // @unchecked: `listener` is a Channel (Sendable); BehaviourInstance is Sendable. The
        // struct only lives inside the Mutex.
        var spec: ServiceSpec
        /// The base logger with the spec's name: a new connection logs under the name it was
        /// accepted with.
        var logger: Logger
        var setup: ServiceSetup?
        var listener: (any Channel)?
        /// How `listener` was made; nil without one.
        var listen: ListenSettings?
        /// For a never-accepting service: our own connections that fill its accept queue.
        var queueFillers: AcceptQueueFiller?
        var boundAddress: ServiceAddress
    }

    /// Checks the spec against its plugins, configures their instances and starts listening.
    /// Throws `ServiceError` with one line naming the service and what is wrong. `observer`, when
    /// given, hears what happens on each connection (see `ConnectionEvent`).
    public static func start(_ spec: ServiceSpec, plugins: PluginCatalog, group: any EventLoopGroup,
                             logger: Logger, queuedBytes: QueuedBytesBudget = .processWide,
                             observer: ConnectionObserver? = nil, events: ConnectionEventLog? = nil,
                             tls: TLSSource = .default, limits: ServiceLimits = .defaults) async throws(ServiceError) -> Service {
        try await start(spec, plugins: plugins.plugins, group: group, logger: logger, queuedBytes: queuedBytes,
                        observer: observer, events: events, tls: tls, limits: limits)
    }

    public static func start(_ spec: ServiceSpec, plugins: [String: Plugin], group: any EventLoopGroup,
                             logger: Logger, queuedBytes: QueuedBytesBudget = .processWide,
                             observer: ConnectionObserver? = nil, events: ConnectionEventLog? = nil,
                             tls: TLSSource = .default, limits: ServiceLimits = .defaults) async throws(ServiceError) -> Service {
        try await start(spec, setup: try makeSetup(spec, plugins: plugins, tls: tls), group: group, logger: logger,
                        queuedBytes: queuedBytes, observer: observer, events: events, limits: limits)
    }

    /// Starts listening with a setup made (and so checked) beforehand. `queuedBytes` bounds the
    /// bytes its connections, with those of every service given the same budget, queue to send;
    /// `events`, when given, gets a record of each client connection as it ends.
    public static func start(_ spec: ServiceSpec, setup: ServiceSetup, group: any EventLoopGroup,
                             logger: Logger, queuedBytes: QueuedBytesBudget = .processWide,
                             observer: ConnectionObserver? = nil, events: ConnectionEventLog? = nil,
                             limits: ServiceLimits = .defaults) async throws(ServiceError) -> Service {
        let service = Service(spec: spec, group: group, logger: logger, queuedBytes: queuedBytes, observer: observer,
                              events: events, limits: limits)
        try await service.listen(with: setup, accepting: true)
        return service
    }

    /// Binds the listener without accepting yet: a reload binds every new listener first and
    /// starts them (`startAccepting()`) only once all are bound, or stops them, having changed
    /// nothing. Until then the kernel queues connections; closing the listener resets them.
    public static func bindWithoutAccepting(_ spec: ServiceSpec, setup: ServiceSetup, group: any EventLoopGroup,
                                             logger: Logger, queuedBytes: QueuedBytesBudget = .processWide,
                                             events: ConnectionEventLog? = nil,
                                             limits: ServiceLimits = .defaults) async throws(ServiceError) -> Service {
        let service = Service(spec: spec, group: group, logger: logger, queuedBytes: queuedBytes, observer: nil, events: events,
                              limits: limits)
        try await service.listen(with: setup, accepting: false)
        return service
    }

    /// The spec's behaviour and shapers, configured with their parameters, and its TLS context
    /// from `tls`: everything about a service that can be wrong, checked without touching the
    /// network.
    public static func makeSetup(_ spec: ServiceSpec, plugins: [String: Plugin],
                                 tls: TLSSource = .default) throws(ServiceError) -> ServiceSetup {
        let behaviours = plugins.values.filter { !$0.isShaper }.map(\.name).sorted()
        guard let plugin = plugins[spec.behaviour], !plugin.isShaper else {
            let what = plugins[spec.behaviour] != nil ? "'\(spec.behaviour)' is a shaper, not a behaviour"
                                                      : "unknown behaviour '\(spec.behaviour)'"
            throw ServiceError(spec, "\(what) (available: \(list(behaviours)))", field: "behaviour")
        }
        let behaviour = try instance(of: plugin, parameters: spec.parameters, spec: spec, field: "parameters")
        var shapers: [ServiceSetup.Shaper] = []
        for (index, shaper) in spec.shapers.enumerated() {
            guard let shaperPlugin = plugins[shaper.shaper], shaperPlugin.isShaper else {
                let known = plugins.values.filter(\.isShaper).map(\.name).sorted()
                throw ServiceError(spec, "unknown shaper '\(shaper.shaper)' (available: \(list(known)))",
                                   field: "shapers[\(index)].shaper")
            }
            shapers.append(.init(name: shaper.name,
                                 instance: try instance(of: shaperPlugin, parameters: shaper.parameters, spec: spec,
                                                        field: "shapers[\(index)].parameters"),
                                 probability: shaper.probability, direction: shaper.direction))
        }
        var context: NIOSSLContext?
        if let tlsSpec = spec.tls {
            do {
                context = try tls.context(for: tlsSpec)
            } catch {
                // "tls.profile: no profile 'expird'; ...", or the CA's file and what is wrong with it.
                throw ServiceError(spec, error.field == nil ? "tls: \(error)" : "\(error)", field: error.field ?? "tls")
            }
        }
        return ServiceSetup(behaviour: behaviour, shapers: shapers, tls: context)
    }

    /// "a, b, c" for an error message, or "none".
    private static func list(_ names: [String]) -> String {
        names.isEmpty ? "none" : names.joined(separator: ", ")
    }

    /// `field` names the parameters in errors when the input that failed does not say where it
    /// came from (a configure that refuses the values as a whole).
    private static func instance(of plugin: Plugin, parameters: [String: ParameterInput],
                                 spec: ServiceSpec, field: String) throws(ServiceError) -> BehaviourInstance {
        do {
            let values = try plugin.parameters.resolve(parameters, behaviour: plugin.name)
            // The plugin's create and configure run here, on the control thread: watched too.
            let slot = CallbackRegistry.shared.slotForCurrentThread()
            slot.enter(RunningCall(label: CallbackRegistry.shared.label(of: plugin, service: spec.name),
                                   callback: .createAndConfigure))
            defer { slot.leave() }
            return try BehaviourInstance(plugin: plugin, values: values, host: PluginHostTables.shared.table(for: plugin))
        } catch {
            throw ServiceError(spec, error.message, origin: error.origin, field: error.origin ?? field)
        }
    }

    private init(spec: ServiceSpec, group: any EventLoopGroup, logger: Logger, queuedBytes: QueuedBytesBudget,
                 observer: ConnectionObserver?, events: ConnectionEventLog?, limits: ServiceLimits) {
        self.group = group
        self.limits = limits
        self.observer = observer
        self.events = events
        self.queuedBytes = queuedBytes
        baseLogger = logger
        let serviceLogger = Self.logger(logger, for: spec)
        warnings = LogThrottle(logger: serviceLogger)
        state = Mutex(State(spec: spec, logger: serviceLogger, setup: nil, listener: nil,
                            boundAddress: spec.address))
        draws = Mutex(spec.seed ?? UInt64.random(in: .min ... .max))
    }

    private static func logger(_ base: Logger, for spec: ServiceSpec) -> Logger {
        var logger = base
        logger[metadataKey: "service"] = "\(spec.name)"
        return logger
    }

    /// What the service runs now; a reload can hand the service over to another spec.
    public var spec: ServiceSpec { state.withLock { $0.spec } }
    /// How the listener was made; nil while not listening.
    public var listenSettings: ListenSettings? { state.withLock { $0.listen } }

    /// The address bound: with port 0 the kernel picks one, and a service that listens again
    /// after a pause takes the same one.
    public var boundAddress: ServiceAddress { state.withLock { $0.boundAddress } }
    /// The setup new connections get; nil while the service is suspended.
    public var setup: ServiceSetup? { state.withLock { $0.setup } }
    public var isListening: Bool { state.withLock { $0.listener != nil } }
    /// Connections open now.
    public var openConnections: Int { connections.current }
    /// Connections accepted since start.
    public var acceptedConnections: Int { connections.accepted }

    /// New connections get `setup` from now on; returns the one they got before.
    @discardableResult
    public func swap(to setup: ServiceSetup) -> ServiceSetup? {
        state.withLock { state in
            let old = state.setup
            state.setup = setup
            return old
        }
    }

    /// A reload's change on the same listener: new connections get `spec` and `setup` from now
    /// on (a new seed restarts the draws); open connections finish on the setup they started with.
    public func handOver(to spec: ServiceSpec, setup: ServiceSetup) {
        let reseed = state.withLock { state in
            defer {
                state.spec = spec
                state.logger = Self.logger(baseLogger, for: spec)
                state.setup = setup
            }
            return state.spec.seed != spec.seed
        }
        if reseed { draws.withLock { $0 = spec.seed ?? UInt64.random(in: .min ... .max) } }
    }

    /// Accepts connections on a listener bound by `bindWithoutAccepting(_:setup:group:logger:)`.
    public func startAccepting() {
        let listener = state.withLock { $0.listen?.neverAccept == false ? $0.listener : nil }
        listener?.setOption(.autoRead, value: true).whenFailure { [baseLogger] error in
            baseLogger.error("cannot start accepting: \(error)")
        }
    }

    /// A reload's change that needs a new listener at the same address (its listen settings
    /// change): a socket cannot be listening twice on one address, so the old listener closes
    /// first, and connections that arrive until the new one is bound are refused. If the new one
    /// cannot bind, the old spec and setup listen again as before, and the error says so; if even
    /// that fails the service is left not listening and the error says that.
    public func rebind(to spec: ServiceSpec, setup: ServiceSetup) async throws(ServiceError) {
        let (oldSpec, oldSetup) = state.withLock { ($0.spec, $0.setup) }
        await suspend()
        handOver(to: spec, setup: setup)
        do {
            try await listen(with: setup, accepting: true)
        } catch {
            guard let oldSetup else { throw error }
            handOver(to: oldSpec, setup: oldSetup)
            do {
                try await listen(with: oldSetup, accepting: true)
            } catch let again {
                throw ServiceError(spec, "\(error.reason); nor could it listen again as before: \(again.reason); not listening",
                                   field: "listen", addressInUse: error.addressInUse)
            }
            throw ServiceError(spec, "\(error.reason); it listens as before", field: "listen", addressInUse: error.addressInUse)
        }
    }

    /// The shapers of `setup` that apply to one new connection, each drawn with its probability,
    /// by direction: those toward the client, and those for every upstream it opens; `applied`
    /// says for each of the setup's shapers whether it was drawn.
    private func drawShapers(of setup: ServiceSetup) -> (downstream: [ServiceSetup.Shaper], upstream: [ServiceSetup.Shaper], applied: [Bool]) {
        let applied = setup.shapers.map { draw($0.probability) }
        let drawn = zip(setup.shapers, applied).filter(\.1).map(\.0)
        return (drawn.filter { $0.direction == .downstream }, drawn.filter { $0.direction == .upstream }, applied)
    }

    /// Whether a shaper of this probability applies to one more connection.
    private func draw(_ probability: Double) -> Bool {
        if probability >= 1 { return true }
        if probability <= 0 { return false }
        let draw = draws.withLock { state -> UInt64 in
            state &+= 0x9e37_79b9_7f4a_7c15
            var z = state
            z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
            z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
            return z ^ (z >> 31)
        }
        return Double(draw >> 11) / Double(1 << 53) < probability
    }

    /// Changes the shapers of the connections open now, as toxiproxy's toxics do (a new
    /// connection gets the service's setup anyway): each drops the shapers named `removed` and
    /// takes those of `added` drawn for it, after the others. Returns how many it asked.
    @discardableResult
    public func reshapeOpenConnections(removed: [String], added: [ServiceSetup.Shaper]) -> Int {
        let channels = openChannels.all
        for channel in channels {
            let drawn = added.filter { draw($0.probability) }
            channel.pipeline.fireUserInboundEventTriggered(
                Reshape(removed: removed, downstream: drawn.filter { $0.direction == .downstream },
                        upstream: drawn.filter { $0.direction == .upstream }))
        }
        return channels.count
    }

    /// Closes every open client connection of the service now, with a FIN: each ends `closed` by
    /// cynic, "service disabled" (toxiproxy's disabled proxy drops its connections). Returns how
    /// many it closed.
    @discardableResult
    public func closeOpenConnections(reason: String = "service disabled") -> Int {
        openChannels.closeAll(reason: reason)
    }

    /// Stops accepting (clients now get "connection refused"); open connections go on.
    public func suspend() async {
        let listener = state.withLock { state in
            state.setup = nil
            state.queueFillers = nil
            state.listen = nil
            defer { state.listener = nil }
            return state.listener
        }
        try? await listener?.close()
    }

    /// Listens again, on the address it had, with `setup`.
    public func resume(with setup: ServiceSetup) async throws(ServiceError) {
        guard !isListening else {
            swap(to: setup)
            return
        }
        try await listen(with: setup, accepting: true)
    }

    /// Stops accepting. Connections already open go on until they end.
    public func stop() async {
        await suspend()
    }

    private func listen(with setup: ServiceSetup, accepting: Bool) async throws(ServiceError) {
        swap(to: setup)
        let address = boundAddress
        let settings = ListenSettings(setup.behaviour.listen)
        let channel: any Channel
        do {
            channel = try await bind(address, listen: settings, accepting: accepting)
        } catch {
            state.withLock { $0.setup = nil }
            throw ServiceError(spec, "cannot listen on \(address): \(Self.describe(error))", field: "listen",
                               addressInUse: (error as? IOError)?.errnoCode == EADDRINUSE)
        }
        state.withLock { state in
            state.listener = channel
            state.listen = settings
            if case .tcp(let host, _) = address {
                state.boundAddress = .tcp(host: host, port: channel.localAddress?.port ?? 0)
            }
        }
        if settings.neverAccept { fillAcceptQueue(of: channel) }
    }

    /// Fills a never-accepting listener's queue with connections of our own. Filling ends with a
    /// connect that waits in vain (up to 200 ms), so it runs off the path that starts services:
    /// the others need not wait for it. On a thread of its own, not Dispatch's: with one core,
    /// Dispatch has one worker, and Swift's tasks wait behind a blocked one. The fillers are kept
    /// only while this listener is still the service's.
    private func fillAcceptQueue(of channel: any Channel) {
        guard let bound = channel.localAddress else { return }
        Thread.detachNewThread {
            let fillers = AcceptQueueFiller.fill(bound)
            self.state.withLock { state in
                if state.listener === channel { state.queueFillers = fillers }
            }
        }
    }

    private func bind(_ address: ServiceAddress, listen: ListenSettings, accepting: Bool) async throws -> any Channel {
        var bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: listen.backlog)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        if listen.receiveBuffer > 0 {
            // Set on the listener, so an accepted socket has it before its first window is sent.
            bootstrap = bootstrap.serverChannelOption(.socketOption(.so_rcvbuf), value: SocketOptionValue(listen.receiveBuffer))
        }
        // A never-accepting listener never reads; one bound ahead of a reload's commit waits for it.
        if listen.neverAccept || !accepting {
            bootstrap = bootstrap.serverChannelOption(.autoRead, value: false)
        }
        bootstrap = bootstrap
            // The plugin decides what a half-closed connection means (conn_peer_closed).
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    // The setup current at accept time serves this connection to its end.
                    guard let setup = self.setup else {
                        throw ChannelError.ioOnClosedChannel
                    }
                    try self.admit(channel)
                    guard let tls = setup.tls else {
                        try self.addConnectionHandlers(to: channel, setup: setup)
                        return
                    }
                    // The behaviour's connection begins once TLS is up: until then only the gate
                    // hears it, and records a handshake that fails.
                    let handlers = channel.pipeline.syncOperations
                    try handlers.addHandler(NIOSSLServerHandler(context: tls))
                    let (name, logger) = self.state.withLock { ($0.spec.name, $0.logger) }
                    try handlers.addHandler(TLSHandshakeGate(
                        service: name, setup: setup, logger: logger, events: self.events,
                        install: { channel in try self.addConnectionHandlers(to: channel, setup: setup) }))
                }
            }
        // Under --isolate the socket outlives this process (ListenerHandOff).
        if let socket = try ListenerHandOff.shared.socket(service: spec.name, address: address, listen: listen) {
            let channel = try await bootstrap.withBoundSocket(socket).get()
            ListenerHandOff.shared.settle(socket, listen: listen)
            return channel
        }
        let channel: any Channel
        switch address {
        case .tcp(let host, let port):
            channel = try await bootstrap.bind(host: host, port: port).get()
        case .unix(let path):
            channel = try await bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).get()
        }
        return channel
    }

    /// What reads a connection's bytes (or HTTP requests) and drives its behaviour and shapers,
    /// added at the end of its pipeline: at accept, or once TLS is up.
    private func addConnectionHandlers(to channel: any Channel, setup: ServiceSetup) throws {
        let instance = setup.behaviour
        let handlers = channel.pipeline.syncOperations
        let connectionGroup = ConnectionGroup()
        if instance.plugin.speaksHTTP1 {
            // Counted as they arrive: the driver sees whole requests.
            try handlers.addHandler(ReadCounter(counting: connectionGroup.client))
            try handlers.addHandler(HTTPRequestAssembler.decoder(bounding: limits))
            try handlers.addHandler(HTTPRequestAssembler(maxHeaderBytes: limits.maxHeaderBytes, maxBodyBytes: limits.maxBodyBytes))
        } else {
            try handlers.addHandler(RawInput(counting: connectionGroup.client))
        }
        let number = self.observer == nil ? 0 : self.connectionNumbers.add(1, ordering: .relaxed).newValue
        let (logger, name) = self.state.withLock { ($0.logger, $0.spec.name) }
        let shapers = self.drawShapers(of: setup)
        let record = self.events.map { RecordContext(log: $0, service: name, setup: setup, applied: shapers.applied) }
        try handlers.addHandler(ConnectionDriver(instance: instance, shapers: shapers.downstream,
                                                 upstreamShapers: shapers.upstream, logger: logger,
                                                 connections: self.connections, queuedBytes: self.queuedBytes,
                                                 warnings: self.warnings, observer: self.observer, number: number,
                                                 group: connectionGroup, record: record,
                                                 openChannels: self.openChannels))
    }

    /// Takes the accepted `channel` into the service, or refuses it when the service holds its
    /// bound already (see `ConnectionAdmission`): thrown, the channel is closed at once. Said in
    /// one line, and the repeats counted, not one line a connection.
    private func admit(_ channel: any Channel) throws {
        let (limit, logger) = state.withLock { ($0.spec.maxConnections ?? limits.maxConnections, $0.logger) }
        guard admission.admit(limit: limit) else {
            warnings.warning("connection limit",
                             "\(limit) connections open, the most it holds (max_connections, --max-connections): new ones are closed at once until one ends",
                             logger: logger, flushOn: channel.eventLoop)
            throw OverConnectionLimit()
        }
        channel.closeFuture.whenComplete { _ in self.admission.release() }
    }

    private static func describe(_ error: any Error) -> String {
        if let io = error as? IOError {
            return io.errnoCode == EADDRINUSE ? "address already in use" : "\(io)"
        }
        return "\(error)"
    }
}

/// A connection accepted over its service's bound, closed at once.
struct OverConnectionLimit: Error {}

/// A service that cannot start, said in one line.
public struct ServiceError: Error, Sendable, CustomStringConvertible {
    public let message: String
    /// What is wrong, without the origin and the service's name.
    public let reason: String
    /// What part of the spec is wrong, as the control API names it ("behaviour", "listen",
    /// "shapers[1].shaper"; a parameter's origin when the input says where it came from).
    public let field: String?
    /// The listener could not bind because the address is taken.
    public let addressInUse: Bool

    /// The service's name.
    public let service: String

    init(_ spec: ServiceSpec, _ reason: String, origin: String? = nil, field: String? = nil, addressInUse: Bool = false) {
        message = "\(origin ?? spec.origin): service '\(spec.name)': \(reason)"
        service = spec.name
        self.reason = reason
        self.field = field
        self.addressInUse = addressInUse
    }

    public var description: String { message }
}

/// Connections of cynic's own that fill a listener's accept queue, so that it answers no other
/// SYN: a client's connect then times out, as against a host that is up but overloaded.
final class AcceptQueueFiller: @unchecked Sendable {
    // @unchecked: the descriptors are only closed, once, in deinit.
    private let descriptors: [Int32]

    /// Connects to `address` until a connect no longer completes: the queue is full.
    static func fill(_ address: SocketAddress) -> AcceptQueueFiller {
        var descriptors: [Int32] = []
        for _ in 0..<64 {
            let fd = socket(Int32(address.protocol.rawValue), Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
            guard fd >= 0 else { break }
            let started = address.withSockAddr { connect(fd, $0, socklen_t($1)) }
            var poller = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            // A connect the full queue drops stays unanswered; 200 ms is ample on loopback.
            guard started == 0 || (errno == EINPROGRESS && poll(&poller, 1, 200) == 1) else {
                close(fd)
                break
            }
            descriptors.append(fd)
        }
        return AcceptQueueFiller(descriptors: descriptors)
    }

    private init(descriptors: [Int32]) {
        self.descriptors = descriptors
    }

    deinit {
        descriptors.forEach { close($0) }
    }
}
