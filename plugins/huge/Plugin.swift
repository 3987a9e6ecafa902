// huge — a correct response with a body as big as asked: 1 GiB by default, several if you like.
//
// Tests a client's limits: one that reads whole bodies into memory runs out of it, and one with a
// maximum response size should refuse from the Content-Length, before the body, not after a GiB.
import CynicPluginKit

final class HugeBody: Behaviour {
    /// What is sent at a time: made once, sent from and never copied here. A multiple of the
    /// pattern's line, so each chunk carries on where the last stopped.
    static let chunk = Pattern.bytes(0..<65_536)

    var size: UInt64 = 1 << 30

    func open(_ conn: Connection) -> any ConnectionHandler { Download(size: size) }
}

/// One connection's downloads. Each `then` tag is the offset of the next chunk: the host holds one
/// chunk at a time, whatever the size.
final class Download: ConnectionHandler {
    private let size: UInt64
    private var keepAlive = false

    init(size: UInt64) { self.size = size }

    func request(_ request: HTTPRequest, on conn: Connection) {
        keepAlive = request.keepAlive
        conn.send(HTTPResponse.head(headers: ["Content-Type": "application/octet-stream",
                                              "Content-Length": String(size),
                                              "Connection": keepAlive ? "keep-alive" : "close"]))
        send(from: 0, on: conn)
    }

    func resume(tag: UInt64, on conn: Connection) {
        send(from: tag, on: conn)
    }

    private func send(from offset: UInt64, on conn: Connection) {
        guard offset < size else {
            // Left open, the connection gets the client's next request once the body is out.
            if !keepAlive { conn.close() }
            return
        }
        let count = Int(min(UInt64(HugeBody.chunk.count), size - offset))
        conn.send(HugeBody.chunk[..<count])
        conn.then(offset + UInt64(count))
    }
}

private let configure: @convention(c) (UnsafeMutableRawPointer?, UInt64) -> UnsafePointer<CChar>? = {
    instance, size in
    HugeBody.configure(instance) { $0.size = size }
}

private let plugin = PluginDescriptor(
    name: "huge", description: "Answers with a body of `size` bytes (1 GiB by default), as fast as the client reads.",
    defaultPort: 2007, http: true,
    params: [Parameter("size", .uint64, default: "1073741824",
                       doc: "Bytes in the body. Any size: it is streamed 64 KiB at a time.")],
    configure: unsafeBitCast(configure, to: cynic_any_fn.self), behaviour: HugeBody.self)

@_cdecl("cynic_plugin_entry")
public func cynicPluginEntry() -> UnsafePointer<cynic_plugin> { plugin.pointer }
