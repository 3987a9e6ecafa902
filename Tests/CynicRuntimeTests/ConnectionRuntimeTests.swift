import CynicPlugins
import CynicRuntime
import CynicTestSupport
import Foundation
import Testing

/// A plugin whose behaviour is picked by its `mode` parameter, to drive every host action and
/// report the host's answers back to the client as text.
let probePlugin = """
    #include <cynic/plugin.h>
    #include <pthread.h>
    #include <stdio.h>
    #include <stdlib.h>
    #include <string.h>

    static const cynic_host *host;
    typedef struct { char mode[32]; } instance;
    typedef struct { uint64_t received; } state;

    static void *create(const cynic_host *h) { host = h; return calloc(1, sizeof(instance)); }
    static void destroy(void *i) { free(i); }
    static const char *configure(void *raw, const char *mode) {
        snprintf(((instance *)raw)->mode, sizeof ((instance *)raw)->mode, "%s", mode);
        return NULL;
    }

    static void report(cynic_conn *conn, const char *label, int code) {
        char line[64];
        int n = snprintf(line, sizeof line, "%s=%d\\n", label, code);
        host->send(conn, line, (size_t)n);
    }

    struct call { cynic_conn *conn; int result; };
    static void *send_from_thread(void *arg) {
        struct call *call = arg;
        call->result = host->send(call->conn, "x", 1);
        return NULL;
    }

    static void *conn_open(void *raw, cynic_conn *conn) {
        instance *self = raw;
        if (strcmp(self->mode, "order") == 0) {
            host->send(conn, "a", 1);
            host->wait(conn, 100);
            host->send(conn, "b", 1);
            host->then(conn, 7);
        } else if (strcmp(self->mode, "closed") == 0) {
            report(conn, "first", host->send(conn, "", 0));
            host->close(conn);
            int after = host->send(conn, "y", 1);
            host->cancel_pending(conn);
            report(conn, "after-close", after);
            report(conn, "null-bytes", host->send(conn, NULL, 5));
            host->close(conn);
        } else if (strcmp(self->mode, "thread") == 0) {
            struct call call = { conn, 99 };
            pthread_t thread;
            pthread_create(&thread, NULL, send_from_thread, &call);
            pthread_join(thread, NULL);
            report(conn, "other-thread", call.result);
            host->close(conn);
        } else if (strcmp(self->mode, "half") == 0) {
            host->send(conn, "bye", 3);
            host->shutdown_write(conn);
        } else if (strcmp(self->mode, "deaf") == 0) {
            host->stop_reading(conn);
        } else if (strcmp(self->mode, "flood") == 0) {
            /* Sends 1 MiB blocks without `then` until one is refused; resumes with
             * tag = blocks queued * 10 + the refusal's code, negated. */
            static uint8_t block[1 << 20];
            uint64_t queued = 0;
            int result = CYNIC_OK;
            while (queued < 1000 && (result = host->send(conn, block, sizeof block)) == CYNIC_OK) queued++;
            host->then(conn, queued * 10 + (uint64_t)(-result));
        }
        return calloc(1, sizeof(state));
    }

    static void conn_data(void *raw, cynic_conn *conn, const uint8_t *bytes, size_t length) {
        (void)conn; (void)bytes;
        ((state *)raw)->received += length;
    }

    static void conn_resume(void *raw, cynic_conn *conn, uint64_t tag) {
        (void)raw;
        report(conn, "resumed", (int)tag);
        host->close(conn);
    }

    static void conn_peer_closed(void *raw, cynic_conn *conn) {
        report(conn, "peer-closed-after", (int)((state *)raw)->received);
        host->close(conn);
    }

    static void conn_end(void *raw, cynic_conn *conn) { (void)conn; free(raw); }

    static const cynic_param params[] = { { "mode", CYNIC_TYPE_STRING, "order", "what to do" } };
    static const cynic_plugin plugin = {
        .abi_version = CYNIC_ABI_VERSION, .struct_size = sizeof(cynic_plugin), .name = "probe",
        .params = params, .param_count = 1, .configure = CYNIC_CONFIGURE(configure),
        .create = create, .destroy = destroy, .conn_open = conn_open, .conn_data = conn_data,
        .conn_resume = conn_resume, .conn_peer_closed = conn_peer_closed, .conn_end = conn_end,
    };
    CYNIC_EXPORT const cynic_plugin *cynic_plugin_entry(void) { return &plugin; }
    """

/// An HTTP plugin that answers each request with what it was given, keep-alive when asked.
let echoHTTPPlugin = """
    #include <cynic/plugin.h>
    #include <stdio.h>
    #include <string.h>
    static const cynic_host *host;
    static void *create(const cynic_host *h) { host = h; return NULL; }
    static void *conn_open(void *i, cynic_conn *c) { (void)i; (void)c; return NULL; }
    static void conn_request(void *s, cynic_conn *conn, const cynic_http_request *r) {
        (void)s;
        char body[4096];
        int n = snprintf(body, sizeof body, "%s %s HTTP/%u.%u\\nheaders=%u x-test=%s\\nbody=%zu:%.*s\\n",
                         r->method, r->target, r->version_major, r->version_minor, r->header_count,
                         cynic_http_header_value(r, "X-TEST") ? cynic_http_header_value(r, "x-test") : "(none)",
                         r->body_length, (int)(r->body_length > 100 ? 100 : r->body_length), r->body ? (const char *)r->body : "");
        char head[256];
        int h = snprintf(head, sizeof head, "HTTP/1.1 200 OK\\r\\nContent-Length: %d\\r\\nConnection: %s\\r\\n\\r\\n",
                         n, r->keep_alive ? "keep-alive" : "close");
        host->send(conn, head, (size_t)h);
        host->send(conn, body, (size_t)n);
        if (!r->keep_alive) host->close(conn);
    }
    static const cynic_plugin plugin = {
        .abi_version = CYNIC_ABI_VERSION, .struct_size = sizeof(cynic_plugin), .name = "echo-http",
        .flags = CYNIC_PLUGIN_HTTP1, .create = create, .conn_open = conn_open, .conn_request = conn_request,
    };
    CYNIC_EXPORT const cynic_plugin *cynic_plugin_entry(void) { return &plugin; }
    """

/// Plugins compiled once for the suite.
enum RuntimeTestPlugins {
    static let folder = TemporaryFolder("cynic-runtime")
    static let catalog: PluginCatalog = {
        var catalog = PluginCatalog()
        for (name, source) in [("probe", probePlugin), ("echo-http", echoHTTPPlugin)] {
            catalog.add(file: try! compileCPlugin(source, named: name, into: folder.path))
        }
        // A shipped shaper too, to put in front of these.
        catalog.add(file: TestServices.shipped.plugins["limit"]!.file)
        precondition(catalog.refusals.isEmpty, "\(catalog.refusals)")
        return catalog
    }()

    static func start(_ name: String, _ parameters: [String: String] = [:]) async throws -> Service {
        try await TestServices.start(name, parameters: parameters, catalog: catalog)
    }
}

@Suite("Connections: actions, callbacks, hostile clients")
struct ConnectionRuntimeTests {
    @Test("actions run in order; a wait delays what follows; then calls back when reached")
    func order() async throws {
        let service = try await RuntimeTestPlugins.start("probe", ["mode": "order"])
        defer { Task { await service.stop() } }
        let start = Date() // before the connect: the server's clock may start before it returns
        let client = try SocketClient(port: service.port)
        let (bytes, end) = client.receiveAll()
        #expect(String(decoding: bytes, as: UTF8.self) == "abresumed=7\n")
        #expect(end == .endOfFile)
        #expect(Date().timeIntervalSince(start) >= 0.095)
    }

    @Test("after a close is queued actions are refused; cancel_pending lifts it; bad arguments are refused")
    func closedAndInvalid() async throws {
        let service = try await RuntimeTestPlugins.start("probe", ["mode": "closed"])
        defer { Task { await service.stop() } }
        let (bytes, _) = try SocketClient(port: service.port).receiveAll()
        // cancel_pending dropped the queued "first=0" report along with the close.
        #expect(String(decoding: bytes, as: UTF8.self) == "after-close=-1\nnull-bytes=-3\n")
    }

    @Test("a plugin sending in a loop without then is refused with CYNIC_ERR_FULL at 64 MiB; what it queued is sent")
    func sendQueueIsBounded() async throws {
        let plain = try await RuntimeTestPlugins.start("probe", ["mode": "flood"])
        // Behind a shaper that forwards every send (its own send returns nothing), the
        // behaviour still hears that the queue is full.
        let shaped = try await TestServices.start("probe", parameters: ["mode": "flood"],
                                                  shapers: ["limit:bytes=10000000000"], catalog: RuntimeTestPlugins.catalog)
        defer { Task { await plain.stop(); await shaped.stop() } }
        for service in [plain, shaped] {
            let (bytes, end) = try await offThePool { try SocketClient(port: service.port).receiveAll(timeout: 60) }
            #expect(bytes.count == (64 << 20) + "resumed=644\n".utf8.count)
            #expect(String(decoding: bytes.suffix(12), as: UTF8.self) == "resumed=644\n", "64 blocks, then CYNIC_ERR_FULL (-4)")
            #expect(end == .endOfFile)
        }
    }

    @Test("a host function called from another thread is refused with CYNIC_ERR_THREAD")
    func wrongThread() async throws {
        let service = try await RuntimeTestPlugins.start("probe", ["mode": "thread"])
        defer { Task { await service.stop() } }
        let (bytes, _) = try SocketClient(port: service.port).receiveAll()
        #expect(String(decoding: bytes, as: UTF8.self) == "other-thread=-2\n")
    }

    @Test("shutdown_write: the client reads EOF and can still send; the plugin sees its bytes and its FIN")
    func halfClose() async throws {
        let service = try await RuntimeTestPlugins.start("probe", ["mode": "half"])
        defer { Task { await service.stop() } }
        let client = try SocketClient(port: service.port)
        #expect(client.receiveAll() == (Array("bye".utf8), .endOfFile))
        #expect(client.send(String(repeating: "z", count: 1000)) == 0)
        client.shutdownWrite()
        // Written by conn_peer_closed after its close was lifted: the plugin got all 1000 bytes.
        // The write side is shut, so those bytes cannot reach us; the connection ends.
        #expect(client.receive(timeout: 10) == .endOfFile || client.receive(timeout: 10) == .endOfFile)
    }

    @Test("stop_reading: the client's writes stall once the buffers are full")
    func stopReading() async throws {
        let service = try await RuntimeTestPlugins.start("probe", ["mode": "deaf"])
        defer { Task { await service.stop() } }
        let client = try SocketClient(port: service.port)
        var timeout = timeval(tv_sec: 0, tv_usec: 300_000)
        setsockopt(client.fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let chunk = [UInt8](repeating: 1, count: 65536)
        var sent = 0
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            let n = chunk.withUnsafeBytes { send(client.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { break }
            sent += n
        }
        // Loopback buffers hold a few MiB at most; a host still reading would take all 10 s worth.
        #expect(sent < 64 << 20, "sent \(sent) bytes")
        #expect(Date() < deadline, "writes never stalled")
    }

    @Test("HTTP: the plugin gets method, target, version, headers and body; keep-alive and pipelining work")
    func httpRequests() async throws {
        let service = try await RuntimeTestPlugins.start("echo-http")
        defer { Task { await service.stop() } }
        let client = try SocketClient(port: service.port)
        // Three requests in one write: answered one after the other, in order.
        client.send("POST /one?x=1 HTTP/1.1\r\nHost: h\r\nX-Test: yes\r\nContent-Length: 5\r\n\r\nhello"
                    + "GET /two HTTP/1.1\r\nHost: h\r\n\r\n"
                    + "GET /three HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        let (bytes, end) = client.receiveAll()
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(end == .endOfFile)
        let bodies = text.components(separatedBy: "\r\n\r\n").dropFirst().map { $0.components(separatedBy: "HTTP/1.1 200")[0] }
        #expect(bodies == ["POST /one?x=1 HTTP/1.1\nheaders=3 x-test=yes\nbody=5:hello\n",
                           "GET /two HTTP/1.1\nheaders=1 x-test=(none)\nbody=0:\n",
                           "GET /three HTTP/1.1\nheaders=2 x-test=(none)\nbody=0:\n"])
        #expect(text.components(separatedBy: "Connection: keep-alive").count == 3)
    }

    @Test("HTTP: a malformed request gets 400 and a close; the service goes on")
    func malformedHTTP() async throws {
        let service = try await RuntimeTestPlugins.start("echo-http")
        defer { Task { await service.stop() } }
        let client = try SocketClient(port: service.port)
        client.send("THIS IS NOT HTTP\r\n\r\n")
        let (bytes, end) = client.receiveAll()
        #expect(String(decoding: bytes, as: UTF8.self).hasPrefix("HTTP/1.1 400 Bad Request\r\n"))
        #expect(end == .endOfFile || end == .failed(errno: ECONNRESET))
        let next = try SocketClient(port: service.port)
        next.send("GET / HTTP/1.0\r\n\r\n")
        #expect(String(decoding: next.receiveAll().bytes, as: UTF8.self).contains("GET / HTTP/1.0"))
    }

    @Test("HTTP: a body over the limit gets 413 — at once when announced, else once it passes — and is never held whole")
    func oversizedBody() async throws {
        let service = try await RuntimeTestPlugins.start("echo-http")
        defer { Task { await service.stop() } }
        // Announced: refused on the head, without waiting for a byte of the body.
        let announced = try SocketClient(port: service.port)
        announced.send("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10000000\r\n\r\n")
        #expect(String(decoding: announced.receiveAll().bytes, as: UTF8.self).hasPrefix("HTTP/1.1 413 Content Too Large\r\n"))
        // Chunked: no length to read ahead, so refused once the body passes the limit.
        let chunked = try SocketClient(port: service.port)
        chunked.send("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in 0..<32 { _ = chunked.send("10000\r\n" + String(repeating: "A", count: 0x10000) + "\r\n") }
        #expect(String(decoding: chunked.receiveAll().bytes, as: UTF8.self).hasPrefix("HTTP/1.1 413 Content Too Large\r\n"))
    }

    @Test("HTTP: a client that leaves in the middle of its request body gets 400; the plugin hears nothing after its end",
          arguments: ["http-json", "echo-http"])
    func requestCutShort(behaviour: String) async throws {
        // http-json is a Swift plugin whose state pointer is gone after conn_end: a call after
        // it (here, peer-closed) was a crash of the whole server.
        let service = behaviour == "echo-http" ? try await RuntimeTestPlugins.start(behaviour)
                                               : try await TestServices.start(behaviour)
        defer { Task { await service.stop() } }
        for _ in 0..<3 {
            let client = try SocketClient(port: service.port)
            client.send("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\nonly part of it")
            client.shutdownWrite()
            let (bytes, end) = client.receiveAll()
            #expect(String(decoding: bytes, as: UTF8.self).hasPrefix("HTTP/1.1 400 Bad Request\r\n"))
            #expect(end == .endOfFile || end == .failed(errno: ECONNRESET))
        }
        let next = try SocketClient(port: service.port)
        next.send("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        #expect(String(decoding: next.receiveAll().bytes, as: UTF8.self).hasPrefix("HTTP/1.1 200 OK\r\n"))
    }

    @Test("clients that reset mid-stream or vanish leave nothing behind; the service keeps serving")
    func hostileClients() async throws {
        let service = try await TestServices.start("random", parameters: ["length": "1000000000"])
        defer { Task { await service.stop() } }
        for _ in 0..<20 {
            let client = try SocketClient(port: service.port)
            _ = client.receive()
            var abort = linger(l_onoff: 1, l_linger: 0)
            setsockopt(client.fd, SOL_SOCKET, SO_LINGER, &abort, socklen_t(MemoryLayout<linger>.size))
        }
        let deadline = Date().addingTimeInterval(20)
        while service.openConnections > 0, Date() < deadline { try await Task.sleep(for: .milliseconds(20)) }
        #expect(service.openConnections == 0)
        #expect(service.acceptedConnections == 20)
        let small = try await TestServices.start("random", parameters: ["length": "10"])
        defer { Task { await small.stop() } }
        #expect(try SocketClient(port: small.port).receiveAll().bytes.count == 10)
    }

    @Test("many idle connections at once are held without a thread each")
    func manyConnections() async throws {
        let service = try await TestServices.start("noresponse")
        defer { Task { await service.stop() } }
        // Counted before and after: other tests of the run start and end threads of their own.
        let threadsBefore = try FileManager.default.contentsOfDirectory(atPath: "/proc/self/task").count
        let clients = try (0..<500).map { _ in try SocketClient(port: service.port) }
        let deadline = Date().addingTimeInterval(20)
        while service.openConnections < clients.count, Date() < deadline { try await Task.sleep(for: .milliseconds(20)) }
        #expect(service.openConnections == 500)
        let threads = try FileManager.default.contentsOfDirectory(atPath: "/proc/self/task").count
        // A thread per connection would add 500; other tests' threads come and go meanwhile.
        #expect(threads - threadsBefore < 250, "\(threadsBefore) threads, then \(threads) with 500 connections")
        for client in clients { client.shutdownWrite() }
        for client in clients { #expect(client.receive(timeout: 10) == .endOfFile) }
    }
}
