// The floor of figure 3: a SwiftNIO server with one do-nothing handler per connection, reading and
// discarding, as `cynic serve noresponse` does. Prints "listening on 127.0.0.1:PORT".
import NIOCore
import NIOPosix
import Glibc

final class Discard: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
}
setvbuf(stdout, nil, _IOLBF, 0)
let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
let channel = try ServerBootstrap(group: group)
    .serverChannelOption(.backlog, value: 1024)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelInitializer { $0.pipeline.addHandler(Discard()) }
    .bind(host: "127.0.0.1", port: 0).wait()
print("listening on 127.0.0.1:\(channel.localAddress!.port!)")
try channel.closeFuture.wait()
