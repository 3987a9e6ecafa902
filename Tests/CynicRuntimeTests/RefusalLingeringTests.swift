@testable import CynicRuntime
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

/// A request refused by the host is answered at once, and the refusal reaches the driver (which
/// closes) only when the client has stopped sending or the lingering is over: on an embedded
/// channel, with virtual time.
@Suite("A refused request lingers, without sockets")
struct RefusalLingeringTests {
    private static func channel() throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        // An embedded channel closes whole when asked to close its output: a socket half-closes.
        try channel.pipeline.syncOperations.addHandler(HalfClosingSocket())
        // As a service sets it up: the decoder bounds the head, the assembler answers for it.
        try channel.pipeline.syncOperations.addHandler(HTTPRequestAssembler.decoder(bounding: ServiceLimits(maxHeaderBytes: 64, maxBodyBytes: 10)))
        try channel.pipeline.syncOperations.addHandler(HTTPRequestAssembler(maxHeaderBytes: 64, maxBodyBytes: 10))
        return channel
    }

    /// The refusal's reason, if it has reached the driver.
    private static func refusal(_ channel: EmbeddedChannel) throws -> String? {
        guard case .badRequest(let reason)? = try channel.readInbound(as: ConnectionInput.self) else { return nil }
        return reason
    }

    @Test("a body announced over the bound: 413 at once; the client's last bytes are dropped; its EOF hands the refusal on")
    func untilTheClientStops() throws {
        let channel = try Self.channel()
        try channel.writeInbound(ByteBuffer(string: "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello"))
        let answer = try channel.readOutbound(as: ByteBuffer.self).map { String(buffer: $0) }
        #expect(answer?.hasPrefix("HTTP/1.1 413 Content Too Large\r\n") == true, "\(answer ?? "nothing")")
        #expect(try Self.refusal(channel) == nil, "lingering: the driver has not heard yet")
        try channel.writeInbound(ByteBuffer(string: " world"))
        #expect(try channel.readInbound(as: ConnectionInput.self) == nil, "what the client still sends is dropped")
        channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        #expect(try Self.refusal(channel) == "request body of 11 bytes announced, over 10 (--max-body-bytes)")
    }

    @Test("a client that goes on sending: the refusal is handed on once the lingering is over, not before")
    func untilTheLingeringEnds() throws {
        let channel = try Self.channel()
        try channel.writeInbound(ByteBuffer(string: "GET /\(String(repeating: "a", count: 100)) HTTP/1.1\r\n"))
        let answer = try channel.readOutbound(as: ByteBuffer.self).map { String(buffer: $0) }
        #expect(answer?.hasPrefix("HTTP/1.1 431 Request Header Fields Too Large\r\n") == true, "\(answer ?? "nothing")")
        channel.embeddedEventLoop.advanceTime(by: HTTPRequestAssembler.lingering - .milliseconds(1))
        #expect(try Self.refusal(channel) == nil)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1))
        #expect(try Self.refusal(channel) == "request line and headers over 64 bytes (--max-header-bytes)")
    }

    @Test("a request its client's EOF cuts short: 400, and the refusal handed on at once, since the client has stopped")
    func cutShortByTheEOF() throws {
        let channel = try Self.channel()
        try channel.writeInbound(ByteBuffer(string: "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n12"))
        #expect(try channel.readInbound(as: ConnectionInput.self) == nil)
        // The decoder fails on the EOF, then passes the event on.
        channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        let answer = try channel.readOutbound(as: ByteBuffer.self).map { String(buffer: $0) }
        #expect(answer?.hasPrefix("HTTP/1.1 400 Bad Request\r\n") == true, "\(answer ?? "nothing")")
        #expect(try Self.refusal(channel)?.hasPrefix("malformed HTTP request") == true)
    }
}

/// Stands for the socket's half-close: the output "closes", the channel stays open.
final class HalfClosingSocket: ChannelOutboundHandler {
    typealias OutboundIn = NIOAny

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        guard mode == .output else { return context.close(mode: mode, promise: promise) }
        promise?.succeed(())
    }
}
