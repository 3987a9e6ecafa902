import CynicConfig
import Logging
import NIOCore
import NIOPosix

/// The control API's address under `--isolate`: the supervisor listens on it and relays each
/// connection, byte for byte, to the worker's API on a private Unix socket. The address never
/// goes away while a worker restarts; a connection made meanwhile waits for the next worker
/// (up to `patience`) instead of being refused.
public final class APIRelay: Sendable {
    /// How long a connection waits for a worker's API to accept it.
    public static let patience: TimeAmount = .seconds(10)
    static let retryInterval: TimeAmount = .milliseconds(20)

    private let listener: any Channel
    /// "127.0.0.1:8474", the port the kernel chose for port 0.
    public let boundAddress: String

    private init(listener: any Channel, boundAddress: String) {
        self.listener = listener
        self.boundAddress = boundAddress
    }

    /// Listens on `address` and relays to the Unix socket `worker`.
    public static func start(address: ServiceAddress, worker: String, group: any EventLoopGroup,
                             logger: Logger) async throws -> APIRelay {
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.autoRead, value: false)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { client in
                relay(client, to: worker, deadline: .now() + patience, logger: logger)
                return client.eventLoop.makeSucceededVoidFuture()
            }
        let channel: any Channel
        switch address {
        case .tcp(let host, let port): channel = try await bootstrap.bind(host: host, port: port).get()
        case .unix(let path): channel = try await bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).get()
        }
        let bound: String
        switch channel.localAddress {
        case .v4?: bound = "\(channel.localAddress?.ipAddress ?? ""):\(channel.localAddress?.port ?? 0)"
        case .v6?: bound = "[\(channel.localAddress?.ipAddress ?? "")]:\(channel.localAddress?.port ?? 0)"
        default: bound = address.description
        }
        return APIRelay(listener: channel, boundAddress: bound)
    }

    public func stop() async {
        try? await listener.close()
    }

    /// Connects to the worker's socket, again every `retryInterval` while none accepts, then
    /// joins the two connections.
    private static func relay(_ client: any Channel, to worker: String, deadline: NIODeadline, logger: Logger) {
        ClientBootstrap(group: client.eventLoop)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .connect(unixDomainSocketPath: worker)
            .whenComplete { result in
                switch result {
                case .success(let upstream):
                    let (toClient, toWorker) = RelayHandler.pair()
                    do {
                        try client.pipeline.syncOperations.addHandler(toWorker)
                        try upstream.pipeline.syncOperations.addHandler(toClient)
                    } catch {
                        client.close(promise: nil)
                        upstream.close(promise: nil)
                        return
                    }
                    client.setOption(.autoRead, value: true).whenFailure { _ in client.close(promise: nil) }
                case .failure(let error):
                    guard client.isActive else { return }
                    guard NIODeadline.now() < deadline else {
                        logger.warning("control API: no worker answered within \(patience.nanoseconds / 1_000_000_000) s: \(error)")
                        client.close(promise: nil)
                        return
                    }
                    client.eventLoop.scheduleTask(in: retryInterval) { relay(client, to: worker, deadline: deadline, logger: logger) }
                }
            }
    }
}

/// One side of a relay: what its channel reads is written to its partner's, with backpressure
/// (the partner stops reading while this side cannot write) and half-closes passed on.
final class RelayHandler: ChannelDuplexHandler {
    typealias InboundIn = NIOAny
    typealias OutboundIn = NIOAny
    typealias OutboundOut = NIOAny

    private var partner: RelayHandler?
    private var context: ChannelHandlerContext?
    private var pendingRead = false

    static func pair() -> (RelayHandler, RelayHandler) {
        let first = RelayHandler()
        let second = RelayHandler()
        first.partner = second
        second.partner = first
        return (first, second)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        partner = nil
    }

    private func partnerWrite(_ data: NIOAny) {
        context?.write(data, promise: nil)
    }

    private func partnerFlush() {
        context?.flush()
    }

    private func partnerWriteEOF() {
        context?.close(mode: .output, promise: nil)
    }

    private func partnerCloseFull() {
        context?.close(promise: nil)
    }

    private var partnerWritable: Bool { context?.channel.isWritable ?? false }

    private func partnerBecameWritable() {
        if pendingRead {
            pendingRead = false
            context?.read()
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        partner?.partnerWrite(data)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        partner?.partnerFlush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        partner?.partnerCloseFull()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event {
            partner?.partnerWriteEOF()
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { partner?.partnerBecameWritable() }
    }

    func read(context: ChannelHandlerContext) {
        if partner?.partnerWritable ?? false {
            context.read()
        } else {
            pendingRead = true
        }
    }
}
