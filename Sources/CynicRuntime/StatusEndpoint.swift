import Logging
import NIOCore
import NIOPosix
#if canImport(Glibc)
import Glibc
#endif

/// A Unix socket on which a running cynic tells what it serves: every client that connects
/// gets the server's status lines, then EOF. `cynic plugins` reads it, so the live generations of
/// each behaviour and the connections each holds can be seen from another terminal.
public final class StatusEndpoint: Sendable {
    public let path: String
    private let channel: any Channel

    /// The socket of the process `pid` in `directory` (a private, 0700 folder).
    public static func path(in directory: String, pid: Int32 = getpid()) -> String {
        "\(directory)/cynic-\(pid).status"
    }

    public static func start(path: String, server: Server, group: any EventLoopGroup) async throws -> StatusEndpoint {
        let channel = try await ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(StatusWriter(server: server))
                }
            }
            .bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).get()
        return StatusEndpoint(path: path, channel: channel)
    }

    private init(path: String, channel: any Channel) {
        self.path = path
        self.channel = channel
    }

    public func stop() async {
        try? await channel.close()
        unlink(path)
    }
}

private final class StatusWriter: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let server: Server

    init(server: Server) {
        self.server = server
    }

    func channelActive(context: ChannelHandlerContext) {
        let server = self.server
        let status = context.eventLoop.makeFutureWithTask { await server.statusLines() }
        status.assumeIsolated().whenComplete { result in
            let text = ((try? result.get()) ?? ["status unavailable"]).joined(separator: "\n") + "\n"
            context.writeAndFlush(NIOAny(context.channel.allocator.buffer(string: text))).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
        }
    }
}
