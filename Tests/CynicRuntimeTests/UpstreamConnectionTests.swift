import CCynicPlugin
import CynicConfig
import CynicPlugins
import CynicRuntime
import CynicTestSupport
import Foundation
import Testing

/// A relay written against cynic.connect/1 alone: what the client sends goes upstream, what the
/// upstream sends comes back, half-closes and resets pass on, and every upstream event is logged
/// (through host->log) so a test can read the order things happened in.
let relayPlugin = """
    #include <cynic/plugin.h>
    #include <stdio.h>
    #include <stdlib.h>
    #include <string.h>

    static const cynic_host *host;
    static const cynic_connect *net;
    typedef struct { char upstream[256]; } instance;
    typedef struct { cynic_conn *client; cynic_conn *upstream; } pair;

    static void *create(const cynic_host *h) {
        host = h;
        net = h->get_extension(CYNIC_CONNECT_ID);
        return calloc(1, sizeof(instance));
    }
    static void destroy(void *i) { free(i); }
    static const char *configure(void *raw, const char *upstream) {
        if (!net) return "the host has no cynic.connect/1";
        snprintf(((instance *)raw)->upstream, sizeof ((instance *)raw)->upstream, "%s", upstream);
        return NULL;
    }

    static void say(cynic_conn *conn, const char *what, long value) {
        char line[96];
        snprintf(line, sizeof line, "relay: %s %ld", what, value);
        host->log(conn, CYNIC_LOG_INFO, line);
    }

    static void connected(void *s, cynic_conn *u) { (void)s; (void)u; say(((pair *)s)->client, "connected", 0); }
    static void failed(void *s, cynic_conn *u, int error) {
        pair *p = s;
        (void)u;
        say(p->client, "connect_failed", error);
        char line[64];
        int n = snprintf(line, sizeof line, "connect failed: %d\\n", error);
        host->send(p->client, line, (size_t)n);
        host->close(p->client);
    }
    static void data(void *s, cynic_conn *u, const uint8_t *bytes, size_t length) {
        (void)u;
        host->send(((pair *)s)->client, bytes, length);
    }
    static void peer_closed(void *s, cynic_conn *u) {
        (void)u;
        say(((pair *)s)->client, "upstream_peer_closed", 0);
        host->shutdown_write(((pair *)s)->client);
    }
    static void ended(void *s, cynic_conn *u, uint32_t how) {
        pair *p = s;
        (void)u;
        say(p->client, "upstream_ended", how);
        p->upstream = NULL;
        if (how == CYNIC_END_RESET_BY_PEER) host->reset(p->client);
        else if (how == CYNIC_END_CLOSED) host->close(p->client);
    }
    static const cynic_upstream_events events = {
        .abi_version = CYNIC_ABI_VERSION, .struct_size = sizeof(cynic_upstream_events),
        .connected = connected, .connect_failed = failed, .data = data, .peer_closed = peer_closed, .ended = ended,
    };

    static void *conn_open(void *raw, cynic_conn *conn) {
        pair *p = calloc(1, sizeof(pair));
        p->client = conn;
        int status = net->open(conn, ((instance *)raw)->upstream, &events, p, &p->upstream);
        if (status != CYNIC_OK) {
            say(conn, "open", status);
            host->close(conn);
        }
        return p;
    }
    static void conn_data(void *s, cynic_conn *conn, const uint8_t *bytes, size_t length) {
        (void)conn;
        pair *p = s;
        if (p->upstream) host->send(p->upstream, bytes, length);
    }
    static void conn_peer_closed(void *s, cynic_conn *conn) {
        (void)conn;
        pair *p = s;
        say(conn, "client_peer_closed", 0);
        if (p->upstream) host->shutdown_write(p->upstream);
    }
    static void conn_end(void *s, cynic_conn *conn) {
        (void)conn;
        say(conn, "client_ended", ((pair *)s)->upstream != NULL);
        free(s);
    }

    static const cynic_param params[] = { { "upstream", CYNIC_TYPE_STRING, NULL, "host:port" } };
    static const cynic_plugin plugin = {
        .abi_version = CYNIC_ABI_VERSION, .struct_size = sizeof(cynic_plugin),
        .name = "relay", .description = "relays to an upstream",
        .params = params, .param_count = 1, .configure = CYNIC_CONFIGURE(configure),
        .create = create, .destroy = destroy, .conn_open = conn_open, .conn_data = conn_data,
        .conn_peer_closed = conn_peer_closed, .conn_end = conn_end,
    };
    CYNIC_EXPORT const cynic_plugin *cynic_plugin_entry(void) { return &plugin; }
    """

/// A Python TCP server on 127.0.0.1, a thread per connection running `handler(conn)`, until the
/// value is released.
func pythonUpstream(handler: String) throws -> UpstreamServer {
    try UpstreamServer(script: """
        import socket, sys, threading
        def handle(conn):
        \(handler.split(separator: "\n").map { "    " + $0 }.joined(separator: "\n"))
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        print(server.getsockname()[1], flush=True)
        while True:
            conn, _ = server.accept()
            threading.Thread(target=handle, args=(conn,), daemon=True).start()
        """)
}

@Suite("Upstream connections (cynic.connect/1)")
struct UpstreamConnectionTests {
    let folder = TemporaryFolder("cynic-upstream")
    let log = CapturedLog()
    let catalog: PluginCatalog

    init() throws {
        try compileCPlugin(relayPlugin, named: "relay", into: folder.path)
        catalog = try PluginCatalog.load([PluginDirectory(path: folder.path), PluginDirectory(path: Paths.buildFolder, prefix: "libcynic-plugin-")])
    }

    /// Waits until the log has a line with `fragment`.
    private func logShows(_ fragment: String) async throws -> Bool {
        let log = self.log
        return try await offThePool { log.waitFor(fragment) }
    }

    /// This suite's own bound on queued bytes, so what it counts is its services' alone.
    let budget = QueuedBytesBudget(limit: 256 << 20)

    private func relay(to upstream: String, shapers: [ShaperSpec] = []) async throws -> Service {
        let spec = ServiceSpec(name: "relay", behaviour: "relay", address: .tcp(host: "127.0.0.1", port: 0),
                               parameters: ["upstream": ParameterInput(upstream, origin: "test")], shapers: shapers, origin: "test")
        return try await Service.start(spec, plugins: catalog, group: TestServices.group, logger: log.logger, queuedBytes: budget)
    }

    @Test("bytes go both ways through the relay; a half-close reaches the upstream and its answer still comes back")
    func relaysBothWays() async throws {
        // The upstream answers what it read, once the client has shut down its writing.
        let upstream = try pythonUpstream(handler: """
            data = b""
            while True:
                chunk = conn.recv(65536)
                if not chunk: break
                data += chunk
            conn.sendall(b"got " + str(len(data)).encode() + b": " + data[:5])
            conn.close()
            """)
        let service = try await relay(to: "127.0.0.1:\(upstream.port)")
        let port = service.port
        let answer = try await offThePool {
            let client = try SocketClient(port: port)
            _ = client.send("hello, upstream")
            client.shutdownWrite()
            return client.receiveAll()
        }
        #expect(String(decoding: answer.bytes, as: UTF8.self) == "got 15: hello")
        #expect(answer.end == .endOfFile)
        let shown = try await logShows("relay: client_ended 0")
        #expect(shown)
        // The order the header promises: the upstream's end before the client's.
        let text = log.text
        let upstreamEnd = try #require(text.range(of: "relay: upstream_ended"))
        let clientEnd = try #require(text.range(of: "relay: client_ended"))
        #expect(upstreamEnd.lowerBound < clientEnd.lowerBound)
        #expect(text.contains("relay: client_peer_closed"))
        // Its FIN came after we had shut down writing to it: both halves closed, so it ended
        // (CYNIC_END_CLOSED) rather than half-closed, and the relay closed the client.
        #expect(text.contains("relay: upstream_ended \(CYNIC_END_CLOSED)"))
        await service.stop()
    }

    @Test("an upstream that refuses the connection: connect_failed with ECONNREFUSED, then ended")
    func connectRefused() async throws {
        let closedPort = freePort()
        let service = try await relay(to: "127.0.0.1:\(closedPort)")
        let port = service.port
        let answer = try await offThePool { try SocketClient(port: port).receiveAll() }
        #expect(String(decoding: answer.bytes, as: UTF8.self) == "connect failed: \(ECONNREFUSED)\n")
        let shown = try await logShows("relay: upstream_ended \(CYNIC_END_CONNECT_FAILED)")
        #expect(shown)
        await service.stop()
    }

    @Test("an address that cannot be read is CYNIC_ERR_INVALID, said in one line")
    func badAddress() async throws {
        for address in ["no-port", "127.0.0.1:0", "127.0.0.1:99999", "[::1:80", "unix:relative", "a b:80"] {
            let service = try await relay(to: address)
            let port = service.port
            _ = try await offThePool { try SocketClient(port: port).receiveAll() }
            let shown = try await logShows("relay: open \(CYNIC_ERR_INVALID)")
            #expect(shown, "\(address)")
            await service.stop()
        }
        #expect(log.text.contains("cynic.connect/1 open: cannot read the address 'a b:80'"))
    }

    @Test("an upstream that resets: the client is reset too")
    func upstreamResetPassesOn() async throws {
        let upstream = try pythonUpstream(handler: """
            import struct
            conn.recv(100)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()
            """)
        let service = try await relay(to: "127.0.0.1:\(upstream.port)")
        let port = service.port
        let end = try await offThePool {
            let client = try SocketClient(port: port)
            _ = client.send("x")
            return client.receiveAll().end
        }
        #expect(end == .failed(errno: ECONNRESET))
        let shown = try await logShows("relay: upstream_ended \(CYNIC_END_RESET_BY_PEER)")
        #expect(shown)
        await service.stop()
    }

    @Test("an upstream shaper shapes what is sent upstream only: limit cuts the upstream after N bytes")
    func upstreamShaper() async throws {
        // The upstream reports how many bytes it read before EOF, on a second connection.
        let counts = TemporaryFolder("cynic-counts")
        let upstream = try pythonUpstream(handler: """
            total = 0
            while True:
                chunk = conn.recv(65536)
                if not chunk: break
                total += len(chunk)
            open("\(counts.file("count"))", "w").write(str(total))
            conn.close()
            """)
        let limit = ShaperSpec(shaper: "limit", direction: .upstream, parameters: ["bytes": ParameterInput("10", origin: "test")])
        let service = try await relay(to: "127.0.0.1:\(upstream.port)", shapers: [limit])
        let port = service.port
        _ = try await offThePool {
            let client = try SocketClient(port: port)
            _ = client.send(String(repeating: "u", count: 1000))
            return client.receiveAll(timeout: 5)
        }
        let count = try await offThePool {
            let deadline = Date().addingTimeInterval(10)
            while Date() < deadline {
                if let text = try? String(contentsOfFile: counts.file("count"), encoding: .utf8) { return text }
                usleep(20_000)
            }
            return "none"
        }
        #expect(count == "10")
        await service.stop()
    }

    @Test("a fast upstream into a client that does not read: the upstream stops being read, memory stays flat")
    func backPressure() async throws {
        // 256 MiB as fast as the upstream can write; the client reads nothing for a while.
        let upstream = try pythonUpstream(handler: """
            block = b"z" * 65536
            try:
                for _ in range(4096): conn.sendall(block)
            except OSError:
                pass
            conn.close()
            """)
        let service = try await relay(to: "127.0.0.1:\(upstream.port)")
        let port = service.port
        let before = budget.queuedBytes
        let client = try SocketClient(port: port)
        try await Task.sleep(for: .seconds(2))
        // What cynic holds for this client: about the pair bound, not 256 MiB.
        let held = budget.queuedBytes - before
        #expect(held < 8 << 20, "\(held) bytes queued for a client that does not read")
        // Reading resumes the upstream: everything arrives.
        let received = try await offThePool {
            var total = 0
            while case .bytes(let bytes) = client.receive(max: 1 << 20, timeout: 20) { total += bytes.count }
            return total
        }
        #expect(received == 256 << 20)
        await service.stop()
    }
}
