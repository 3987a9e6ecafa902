// http-slow — a correct response, whose body trickles in one byte every `interval_ms`.
//
// Tests a client's overall timeout: each byte resets a naive read timeout, so only a deadline on
// the whole response catches this server.
import CynicPluginKit
#if canImport(Glibc)
import Glibc
#endif

final class SlowBody: Behaviour, ConnectionHandler {
    var page = StaticBody.helloPage
    var interval: UInt32 = 30_000

    // Each `then` tag holds the index of the next byte and, above it, when byte 0 went out
    // (monotonic milliseconds): the queue never holds more than one byte, the behaviour keeps no
    // state per connection, and byte n is due `n × interval_ms` after byte 0 — a slow event loop
    // delays one byte, never all that follow it.
    static let indexBits: UInt64 = 24

    func request(_ request: HTTPRequest, on conn: Connection) {
        conn.send(page.head())
        send(byte: 0, startedAt: Self.nowMilliseconds(), on: conn)
    }

    func resume(tag: UInt64, on conn: Connection) {
        send(byte: Int(tag & ((1 << Self.indexBits) - 1)), startedAt: tag >> Self.indexBits, on: conn)
    }

    private func send(byte index: Int, startedAt start: UInt64, on conn: Connection) {
        guard index < page.bytes.count else {
            conn.close()
            return
        }
        if index > 0 {
            // Past the tag's reach (a body_file of 16 MiB at a byte per interval), plain waits.
            let due = start + UInt64(index) * UInt64(interval)
            let now = Self.nowMilliseconds()
            let fits = index < (1 << Self.indexBits)
            conn.wait(milliseconds: fits ? (due > now ? due - now : 0) : UInt64(interval))
        }
        conn.send(page.bytes[index...index])
        conn.then(UInt64(index + 1) | (start << Self.indexBits))
    }

    static func nowMilliseconds() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1000 + UInt64(time.tv_nsec) / 1_000_000
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
