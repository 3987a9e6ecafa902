import CCynicPlugin
import NIOCore
import NIOHTTP1

/// A whole HTTP request, as the host hands it to an HTTP plugin.
struct CollectedRequest {
    var head: HTTPRequestHead
    var body: [UInt8]

    /// Lends the request to a plugin as a `cynic_http_request`, valid for the call only.
    ///
    /// Called for every request: its strings go into one block, sized beforehand, and its
    /// header array into another — two allocations a request, whatever its headers.
    func withCRequest<R>(_ body: (UnsafePointer<cynic_http_request>) -> R) -> R {
        let headerCount = head.headers.count
        var size = head.method.rawValue.utf8.count + head.uri.utf8.count + 2
        for header in head.headers { size += header.name.utf8.count + header.value.utf8.count + 2 }
        var strings = StringArena(capacity: size)
        defer { strings.free() }
        let headers = UnsafeMutablePointer<cynic_http_header>.allocate(capacity: max(headerCount, 1))
        defer { headers.deallocate() }
        for (index, header) in head.headers.enumerated() {
            headers[index] = cynic_http_header(name: strings.copy(header.name), value: strings.copy(header.value))
        }
        return self.body.withUnsafeBufferPointer { bodyBytes in
            var request = cynic_http_request(
                struct_size: UInt32(MemoryLayout<cynic_http_request>.size),
                method: strings.copy(head.method.rawValue),
                target: strings.copy(head.uri),
                version_major: UInt16(head.version.major),
                version_minor: UInt16(head.version.minor),
                headers: headers,
                header_count: UInt32(headerCount),
                body: bodyBytes.isEmpty ? nil : bodyBytes.baseAddress,
                body_length: bodyBytes.count,
                keep_alive: head.isKeepAlive)
            return withUnsafePointer(to: &request) { body($0) }
        }
    }
}

/// NUL-terminated copies of strings, one after another in one block of `capacity` bytes, valid
/// until `free()`. The caller sizes it: every string's UTF-8 and its NUL.
private struct StringArena {
    private let base: UnsafeMutablePointer<CChar>
    private let capacity: Int
    private var used = 0

    init(capacity: Int) {
        self.capacity = capacity
        base = .allocate(capacity: max(capacity, 1))
    }

    mutating func copy(_ string: String) -> UnsafePointer<CChar> {
        let start = base + used
        var string = string
        let count = string.withUTF8 { utf8 -> Int in
            precondition(used + utf8.count + 1 <= capacity, "StringArena sized too small")
            utf8.withMemoryRebound(to: CChar.self) { bytes in
                if let address = bytes.baseAddress { start.update(from: address, count: bytes.count) }
            }
            return utf8.count
        }
        start[count] = 0
        used += count + 1
        return UnsafePointer(start)
    }

    func free() { base.deallocate() }
}

/// Turns NIOHTTP1's request parts into whole requests, with the body capped so a client cannot
/// make the host hold more than `maxBodyBytes` for one request; the decoder before it caps the
/// head at `maxHeaderBytes` (`ServiceLimits`), and a head over it is answered here.
final class HTTPRequestAssembler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = ConnectionInput

    private let maxHeaderBytes: Int
    private let maxBodyBytes: Int
    private var current: CollectedRequest?
    private var refused = false
    /// The client has sent its last byte (EOF).
    private var inputClosed = false
    /// A refusal answered and lingering: its reason, handed on (and the connection closed) when
    /// the client stops sending or `lingering` is over.
    private var lingeringReason: String?
    private var lingerTimer: Scheduled<Void>?

    /// How long a refused client may go on sending after its answer (nginx's lingering close;
    /// its `lingering_timeout` is 5 s). Closing while it still sends a body would reset the
    /// connection, and a reset can destroy the answer in the client's kernel before it is read:
    /// `requests` would report "connection reset" instead of the 413.
    static let lingering: TimeAmount = .seconds(2)

    init(maxHeaderBytes: Int, maxBodyBytes: Int) {
        self.maxHeaderBytes = maxHeaderBytes
        self.maxBodyBytes = maxBodyBytes
    }

    /// The decoder that goes before it: it counts the target and every header against the bound
    /// (one header as long as all of them is over it too), and past it fails with
    /// `HTTPParserError.headerOverflow`, which is answered here with 431.
    static func decoder(bounding limits: ServiceLimits) -> ByteToMessageHandler<HTTPRequestDecoder> {
        var head = NIOHTTPDecoderLimitConfiguration()
        head.maxHeaderListSize = limits.maxHeaderBytes
        head.maxHeaderFieldSize = limits.maxHeaderBytes
        return ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes, informationalResponseStrategy: .drop,
                                                       limitConfiguration: head))
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !refused else { return }
        switch unwrapInboundIn(data) {
        case .head(let head):
            // A body announced over the limit is refused now, not after the client has sent it
            // (or after it gave up waiting for an answer).
            if let announced = head.headers.first(name: "content-length").flatMap(Int.init), announced > maxBodyBytes {
                refuse(context: context, status: "413 Content Too Large",
                       reason: "request body of \(announced) bytes announced, over \(maxBodyBytes) (--max-body-bytes)")
                return
            }
            current = CollectedRequest(head: head, body: [])
        case .body(var chunk):
            guard current != nil else { return }
            guard current!.body.count + chunk.readableBytes <= maxBodyBytes else {
                refuse(context: context, status: "413 Content Too Large",
                       reason: "request body over \(maxBodyBytes) bytes (--max-body-bytes)")
                return
            }
            current!.body += chunk.readBytes(length: chunk.readableBytes) ?? []
        case .end:
            guard let request = current else { return }
            current = nil
            context.fireChannelRead(wrapInboundOut(.request(request)))
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parserError = error as? HTTPParserError else {
            context.fireErrorCaught(error)
            return
        }
        // The decoder can fail again after the first error (at the close, on what follows):
        // the request was refused once, answered once, and nothing more is handed on.
        guard !refused else { return }
        if parserError == .headerOverflow {
            // RFC 6585's answer, as Node.js gives it; the flag names the bound.
            refuse(context: context, status: "431 Request Header Fields Too Large",
                   reason: "request line and headers over \(maxHeaderBytes) bytes (--max-header-bytes)")
            return
        }
        refuse(context: context, status: "400 Bad Request", reason: "malformed HTTP request (\(error))")
    }

    /// Answers a request the host will not hand on, then closes: the client learns why, and
    /// the behaviour is never called with something it cannot have expected. The answer is
    /// followed by our FIN; what the client still sends is read and dropped until it stops or
    /// `lingering` is over, and only then is the connection closed (see `lingering`).
    private func refuse(context: ChannelHandlerContext, status: String, reason: String) {
        refused = true
        let response = "HTTP/1.1 \(status)\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        context.writeAndFlush(NIOAny(context.channel.allocator.buffer(string: response)), promise: nil)
        guard !inputClosed else {
            context.fireChannelRead(wrapInboundOut(.badRequest(reason)))
            return
        }
        lingeringReason = reason
        context.close(mode: .output, promise: nil)
        let bound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        lingerTimer = context.eventLoop.scheduleTask(in: Self.lingering) {
            bound.value.handler.endLingering(context: bound.value.context)
        }
    }

    /// Hands the refusal on: the driver logs it and closes the connection.
    private func endLingering(context: ChannelHandlerContext) {
        lingerTimer?.cancel()
        lingerTimer = nil
        guard let reason = lingeringReason else { return }
        lingeringReason = nil
        context.fireChannelRead(wrapInboundOut(.badRequest(reason)))
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            inputClosed = true
            // The refused client has stopped sending: the lingering is over, and the driver, not
            // the plugin, ends the connection.
            if lingeringReason != nil {
                endLingering(context: context)
                return
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        // A client that resets while the refusal lingers: the refusal is still logged.
        endLingering(context: context)
        context.fireChannelInactive()
    }
}

/// In a raw service, bytes go to the driver as they come; they are counted on the way.
final class RawInput: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ConnectionInput

    private let counter: ByteCounter

    init(counting counter: ByteCounter) {
        self.counter = counter
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        counter.bytesIn &+= buffer.readableBytes
        context.fireChannelRead(wrapInboundOut(.bytes(buffer)))
    }
}

/// In an HTTP service, in front of the decoder: counts the bytes as they arrive, since the
/// driver sees whole requests.
final class ReadCounter: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let counter: ByteCounter

    init(counting counter: ByteCounter) {
        self.counter = counter
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        counter.bytesIn &+= unwrapInboundIn(data).readableBytes
        context.fireChannelRead(data)
    }
}
