#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOCore

/// Turns one connection's frames into records, and anything wrong into one warning naming the connection.
///
/// Runs on the connection's event loop. An error closes this connection only, never the server.
final class RecordHandler: ChannelInboundHandler {
    typealias InboundIn = RecordFrame

    private let connection: String
    private let peerProcessID: Int?
    private let logger: Logger
    private let onRecord: @Sendable (LogRecord) -> Void

    init(connection: String, peerProcessID: Int?, logger: Logger, onRecord: @escaping @Sendable (LogRecord) -> Void) {
        self.connection = connection
        self.peerProcessID = peerProcessID
        self.logger = logger
        self.onRecord = onRecord
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .payload(let payload):
            do {
                onRecord(try LogRecord.decode(payload: payload, peerProcessID: peerProcessID))
            } catch {
                logger.warning("log sink: \(connection): skipped an undecodable record of \(payload.readableBytes) bytes: \(error)")
            }
        case .skipped(let reason):
            logger.warning("log sink: \(connection): \(reason)")
        }
    }

    func channelActive(context: ChannelHandlerContext) {
        logger.debug("log sink: \(connection) opened")
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        logger.debug("log sink: \(connection) closed")
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.warning("log sink: \(connection): \(error); closing the connection")
        context.close(promise: nil)
    }
}

/// The peer's pid from SO_PEERCRED (Linux); nil where that is not available.
func peerProcessID(of channel: any Channel) -> EventLoopFuture<Int?> {
    #if os(Linux)
    // Glibc's `struct ucred` is not imported into Swift; this has its layout (pid_t, uid_t, gid_t).
    struct PeerCredentials: Sendable {
        var pid: Int32 = 0
        var uid: UInt32 = 0
        var gid: UInt32 = 0
    }
    guard let provider = channel as? any SocketOptionProvider else { return channel.eventLoop.makeSucceededFuture(nil) }
    return provider.unsafeGetSocketOption(level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(SO_PEERCRED))
        .map { (credentials: PeerCredentials) -> Int? in credentials.pid > 0 ? Int(credentials.pid) : nil }
        .recover { _ in nil }
    #else
    return channel.eventLoop.makeSucceededFuture(nil)
    #endif
}
