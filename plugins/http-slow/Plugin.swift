// http-slow — a correct response, whose body trickles in one byte every `interval_ms`.
//
// Tests a client's overall timeout: each byte resets a naive read timeout, so only a deadline on
// the whole response catches this server.
import CynicPluginKit

final class SlowBody: Behaviour, ConnectionHandler {
    var page = StaticBody.helloPage
    var interval: UInt32 = 30_000

    // Each `then` tag is the index of the next byte: the queue never holds more than one byte, and
    // the behaviour keeps no state per connection.
    func request(_ request: HTTPRequest, on conn: Connection) {
        conn.send(page.head())
        send(byte: 0, on: conn)
    }

    func resume(tag: UInt64, on conn: Connection) {
        send(byte: Int(tag), on: conn)
    }

    private func send(byte index: Int, on conn: Connection) {
        guard index < page.bytes.count else {
            conn.close()
            return
        }
        if index > 0 { conn.wait(milliseconds: UInt64(interval)) }
        conn.send(page.bytes[index...index])
        conn.then(UInt64(index + 1))
    }
}

private let configure: @convention(c) (UnsafeMutableRawPointer?, UInt32, UnsafePointer<CChar>?,
                                       UnsafePointer<CChar>?) -> UnsafePointer<CChar>? = {
    instance, interval, bodyFile, contentType in
    SlowBody.configure(instance) {
        $0.interval = interval
        $0.page = try $0.page.configured(file: bodyFile, contentType: contentType)
    }
}

private let plugin = PluginDescriptor(
    name: "http-slow", description: "Sends a correct response's body one byte every interval_ms.",
    defaultPort: 2003, http: true,
    params: [Parameter("interval_ms", .uint32, default: "30000",
                       doc: "Milliseconds between two bytes of the body.")] + StaticBody.helloPage.parameters,
    configure: unsafeBitCast(configure, to: cynic_any_fn.self), behaviour: SlowBody.self)

@_cdecl("cynic_plugin_entry")
public func cynicPluginEntry() -> UnsafePointer<cynic_plugin> { plugin.pointer }
