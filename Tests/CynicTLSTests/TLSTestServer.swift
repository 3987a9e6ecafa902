import CynicTestSupport
import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS

/// A TLS server on 127.0.0.1 that presents `context` and, once the handshake is done, writes
/// "hello\n" and closes: what a client sees of a context, with nothing of cynic's services in between.
final class TLSTestServer: Sendable {
    private let group: MultiThreadedEventLoopGroup
    private let channel: any Channel
    let port: Int

    init(context: NIOSSLContext) throws {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        channel = try ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
                    try channel.pipeline.syncOperations.addHandler(Greeter())
                }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
        port = channel.localAddress?.port ?? 0
    }

    deinit {
        try? channel.close().wait()
        try? group.syncShutdownGracefully()
    }

    /// `openssl s_client` against the server, trusting `caFile`, checking the name localhost; it
    /// reads until the server closes (-ign_eof), so "hello" in its output means the handshake
    /// passed on both sides, and a server's alert after the client's Finished (TLS 1.3) is seen.
    /// - Parameter brief: `-brief` output (without it, s_client also says what ALPN chose).
    func sClient(caFile: String, _ extra: [String] = [], brief: Bool = true) throws -> ProgramResult {
        try runProgram("openssl", ["s_client", "-connect", "127.0.0.1:\(port)", "-servername", "localhost",
                                   "-CAfile", caFile, "-verify_return_error", "-verify_hostname", "localhost",
                                   "-ign_eof"] + (brief ? ["-brief"] : []) + extra, timeout: 20)
    }
}

/// Says hello after the handshake; closes on any error (a client refusing the certificate).
private final class Greeter: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted = event as? TLSUserEvent {
            let channel = context.channel
            context.writeAndFlush(NIOAny(channel.allocator.buffer(string: "hello\n"))).whenComplete { _ in
                channel.close(promise: nil)
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
