// keepalive-race — keeps connections alive, then closes one idle for `idle_ms`: just when a client
// may be sending its next request on it.
//
// Tests a client's connection pool: a request on a pooled connection the server has just closed
// fails with an empty reply or a reset, and a good client retries it (when idempotent) on a new
// connection instead of reporting an error. The Keep-Alive header may promise longer than idle_ms,
// as a server behind a proxy with a shorter timeout does.
import CynicPluginKit

final class KeepaliveRace: Behaviour {
    var idle: UInt32 = 100
    var promised: UInt32 = 5

    func open(_ conn: Connection) -> any ConnectionHandler { IdleTimeout(race: self) }
}

/// One connection. Its idle timeout is a timer (`after`), not a queued `wait` then `then`: the host
/// hands over the next request only once the queue is empty, so a request sent in time would sit
/// behind the wait, to be refused when it ended — always, not in a race. A timer leaves the queue
/// empty, so a request that comes in time is answered at once, and one that comes late finds the
/// connection closed. A timer cannot be cancelled: its tag is the number of the answer it follows,
/// and once another answer has begun it is stale.
final class IdleTimeout: ConnectionHandler {
    private let race: KeepaliveRace
    private var answers: UInt64 = 0

    init(race: KeepaliveRace) { self.race = race }

    func request(_ request: HTTPRequest, on conn: Connection) {
        answers += 1
        let body = Array("ok\n".utf8)
        var headers: [(name: String, value: String)] = [("Content-Type", "text/plain; charset=utf-8"),
                                                        ("Content-Length", String(body.count))]
        guard request.keepAlive else {
            conn.send(HTTPResponse.head(headers: headers + [("Connection", "close")]) + body)
            conn.close()
            return
        }
        headers.append(("Connection", "keep-alive"))
        if race.promised > 0 { headers.append(("Keep-Alive", "timeout=\(race.promised)")) }
        conn.send(HTTPResponse.head(headers: headers) + body)
        conn.then(answers)
    }

    /// The answer is out: the connection is idle from now.
    func resume(tag: UInt64, on conn: Connection) {
        conn.after(milliseconds: UInt64(race.idle), tag: tag)
    }

    func timer(tag: UInt64, on conn: Connection) {
        if tag == answers { conn.close() }
    }
}

private let configure: @convention(c) (UnsafeMutableRawPointer?, UInt32, UInt32) -> UnsafePointer<CChar>? = {
    instance, idle, promised in
    KeepaliveRace.configure(instance) {
        $0.idle = idle
        $0.promised = promised
    }
}

private let plugin = PluginDescriptor(
    name: "keepalive-race", description: "Keeps connections alive, then closes each after idle_ms without a request.",
    defaultPort: 2011, http: true,
    params: [Parameter("idle_ms", .uint32, default: "100",
                       doc: "Milliseconds a connection may stay idle after an answer before it is closed."),
             Parameter("keep_alive_timeout", .uint32, default: "5",
                       doc: "Seconds the Keep-Alive header promises (0: no header); idle_ms is what counts.")],
    configure: unsafeBitCast(configure, to: cynic_any_fn.self), behaviour: KeepaliveRace.self)

@_cdecl("cynic_plugin_entry")
public func cynicPluginEntry() -> UnsafePointer<cynic_plugin> { plugin.pointer }
