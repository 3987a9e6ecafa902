import CynicConfig
import CynicPlugins
@testable import CynicRuntime
import CynicTestSupport
import Foundation
import Logging
import NIOCore
import Testing

/// Keeps the handle of the connection that ended last, and on the next connection calls
/// host->send with it twice: from a thread of its own and from conn_open itself (the slot
/// may well belong to this very connection by now). Reports both codes to the client.
private let stalePlugin = """
    #include <cynic/plugin.h>
    #include <pthread.h>
    #include <stdio.h>
    static const cynic_host *host;
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    static cynic_conn *ended;   /* the last connection that ended: a stale handle */
    static void *create(const cynic_host *h) { host = h; return NULL; }
    static void *send_stale(void *arg) {
        *(int *)arg = host->send(ended, "x", 1);
        host->log(ended, CYNIC_LOG_INFO, "a log line through a stale handle");
        return NULL;
    }
    static void *conn_open(void *i, cynic_conn *conn) {
        (void)i;
        pthread_mutex_lock(&lock);
        cynic_conn *stale = ended;
        pthread_mutex_unlock(&lock);
        if (stale == NULL) {
            host->send(conn, "first\\n", 6);
        } else {
            int other = 99;
            pthread_t thread;
            pthread_create(&thread, NULL, send_stale, &other);
            pthread_join(thread, NULL);
            int same = host->send(stale, "y", 1);
            char line[64];
            int n = snprintf(line, sizeof line, "stale-other-thread=%d stale-same-thread=%d\\n", other, same);
            host->send(conn, line, (size_t)n);
        }
        host->close(conn);
        return NULL;
    }
    static void conn_end(void *s, cynic_conn *conn) {
        (void)s;
        pthread_mutex_lock(&lock);
        ended = conn;
        pthread_mutex_unlock(&lock);
    }
    static const cynic_plugin plugin = { .abi_version = CYNIC_ABI_VERSION, .struct_size = sizeof(cynic_plugin),
        .name = "stale", .create = create, .conn_open = conn_open, .conn_end = conn_end };
    CYNIC_EXPORT const cynic_plugin *cynic_plugin_entry(void) { return &plugin; }
    """

private enum HandlePlugins {
    static let folder = TemporaryFolder("cynic-handles")
    static let catalog: PluginCatalog = {
        var catalog = RuntimeTestPlugins.catalog
        catalog.add(file: try! compileCPlugin(stalePlugin, named: "stale", into: folder.path))
        precondition(catalog.refusals.isEmpty, "\(catalog.refusals)")
        return catalog
    }()
}

private func startService(_ behaviour: String, parameters: [String: String] = [:], shapers: [String] = [],
                          logger: Logger = TestServices.logger, queuedBytes: QueuedBytesBudget) async throws -> Service {
    let spec = ServiceSpec(name: behaviour, behaviour: behaviour, address: .tcp(host: "127.0.0.1", port: 0),
                           parameters: parameters.mapValues { ParameterInput($0, origin: "test") },
                           shapers: try shapers.map { try ShaperSpec(commandLine: $0) }, origin: "test")
    return try await Service.start(spec, plugins: HandlePlugins.catalog, group: TestServices.group, logger: logger,
                                   queuedBytes: queuedBytes)
}

@Suite("Handles, the queued-bytes budget, throttled warnings")
struct HandleAndBudgetTests {
    @Test("a handle kept past conn_end returns CYNIC_ERR_CLOSED from another thread and from its own, even once its slot is reused")
    func staleHandle() async throws {
        let service = try await startService("stale", queuedBytes: QueuedBytesBudget(limit: 1 << 20))
        defer { Task { await service.stop() } }
        #expect(try SocketClient(port: service.port).receiveAll().bytes == Array("first\n".utf8))
        // conn_end runs once the server sees the close: until then the next one finds no handle.
        var answer = ""
        let deadline = Date().addingTimeInterval(10)
        repeat {
            answer = String(decoding: try SocketClient(port: service.port).receiveAll().bytes, as: UTF8.self)
        } while answer == "first\n" && Date() < deadline
        #expect(answer == "stale-other-thread=-1 stale-same-thread=-1\n")
        // Many connections later (slots recycled, generations bumped) the answer is the same.
        for _ in 0..<20 {
            let later = String(decoding: try SocketClient(port: service.port).receiveAll().bytes, as: UTF8.self)
            #expect(later == "stale-other-thread=-1 stale-same-thread=-1\n")
        }
    }

    @Test("every byte queued comes back to the budget when connections end: queued, in NIO's hands, behind a shaper, cancelled")
    func budgetReturnsToZero() async throws {
        let budget = QueuedBytesBudget(limit: 24 << 20)
        let plain = try await startService("probe", parameters: ["mode": "flood"], queuedBytes: budget)
        let shaped = try await startService("probe", parameters: ["mode": "flood"], shapers: ["limit:bytes=10000000000"],
                                            queuedBytes: budget)
        defer { Task { await plain.stop(); await shaped.stop() } }
        // Clients that never read: the budget fills, with bytes queued and one write in NIO's hands.
        var clients: [SocketClient] = []
        for service in [plain, shaped, plain, shaped] { clients.append(try SocketClient(port: service.port)) }
        // Every one accepted before they close: one still in the backlog would be accepted after,
        // flood, and hold bytes the reader below is owed.
        var deadline = Date().addingTimeInterval(10)
        while budget.queuedBytes < 16 << 20 || plain.acceptedConnections < 2 || shaped.acceptedConnections < 2,
              Date() < deadline { usleep(20_000) }
        #expect(budget.queuedBytes >= 16 << 20, "filled to \(budget.queuedBytes)")
        #expect(budget.queuedBytes <= budget.limit)
        #expect(plain.acceptedConnections == 2 && shaped.acceptedConnections == 2)
        clients.removeAll()
        deadline = Date().addingTimeInterval(20)
        while budget.queuedBytes != 0 || plain.openConnections + shaped.openConnections != 0,
              Date() < deadline { usleep(20_000) }
        #expect(budget.queuedBytes == 0)
        #expect(plain.openConnections + shaped.openConnections == 0)
        // A reader, afterwards, takes the whole bound: 24 blocks, then CYNIC_ERR_FULL.
        let (bytes, _) = try await offThePool { try SocketClient(port: plain.port).receiveAll(timeout: 60) }
        #expect(bytes.count == (24 << 20) + "resumed=244\n".utf8.count)
        #expect(budget.queuedBytes == 0)
        // The closed mode queues, closes and cancels: nothing is left held either.
        let closed = try await startService("probe", parameters: ["mode": "closed"], queuedBytes: budget)
        defer { Task { await closed.stop() } }
        _ = try SocketClient(port: closed.port).receiveAll()
        deadline = Date().addingTimeInterval(10)
        while budget.queuedBytes != 0, Date() < deadline { usleep(20_000) }
        #expect(budget.queuedBytes == 0)
    }

    @Test("500 bad requests from one hostile client: a few warning lines, and a count that adds up to 500")
    func hostileClient() async throws {
        let log = CapturedLog()
        let service = try await startService("echo-http", logger: log.logger, queuedBytes: QueuedBytesBudget(limit: 1 << 20))
        defer { Task { await service.stop() } }
        let started = Date()
        for _ in 0..<500 {
            let client = try SocketClient(port: service.port)
            client.send("NOT HTTP AT ALL\r\n\r\n")
            _ = client.receiveAll()
        }
        // The count is said when the 10 s window ends, without another bad request to trigger it.
        #expect(log.waitFor("more like it in the last 10 s", timeout: 30))
        let lines = log.text.split(separator: "\n").filter { $0.contains("closing connection: malformed HTTP request") }
        let windows = Int(Date().timeIntervalSince(started) / 10) + 1
        #expect(lines.count <= 2 * windows, "\(lines.count) lines in \(windows) window(s)")
        let counted = lines.compactMap { line -> Int? in
            guard let range = line.range(of: "… and ") else { return 0 }  // a window's first warning
            return Int(line[range.upperBound...].prefix { $0 != " " }.replacingOccurrences(of: ",", with: ""))
        }
        #expect(lines.count - lines.filter { $0.contains("… and ") }.count + counted.reduce(0, +) == 500,
                "\(lines.joined(separator: "\n"))")
    }
}

@Suite("LogThrottle")
struct LogThrottleTests {
    /// A clock the test moves by hand.
    final class ManualClock: @unchecked Sendable {
        // @unchecked: only read and moved by the test's own thread.
        var now = NIODeadline.uptimeNanoseconds(1_000_000_000)
    }

    @Test("the first warning is logged, repeats within the window counted, and said once when the next comes after it")
    func countsRepeats() {
        let clock = ManualClock()
        let log = CapturedLog()
        let throttle = LogThrottle(window: .seconds(10), logger: log.logger, now: { clock.now })
        throttle.warning("bad request", "closing connection: one", logger: log.logger)
        for _ in 0..<4980 {
            clock.now = clock.now + .milliseconds(1)
            throttle.warning("bad request", "closing connection: another", logger: log.logger)
        }
        throttle.warning("queue full", "send refused", logger: log.logger)  // another kind: its own window
        #expect(log.text == "warning closing connection: one\nwarning send refused")
        clock.now = clock.now + .seconds(10)
        throttle.warning("bad request", "closing connection: later", logger: log.logger)
        #expect(log.text.split(separator: "\n").suffix(2) == [
            "warning closing connection: one … and 4,980 more like it in the last 10 s",
            "warning closing connection: later"])
    }

    @Test("flush says the count of a window that is over, once, and nothing for one still open")
    func flush() {
        let clock = ManualClock()
        let log = CapturedLog()
        let throttle = LogThrottle(window: .seconds(10), logger: log.logger, now: { clock.now })
        throttle.warning("bad request", "first", logger: log.logger)
        throttle.warning("bad request", "second", logger: log.logger)
        throttle.flush()
        #expect(log.text == "warning first")
        clock.now = clock.now + .seconds(11)
        throttle.flush()
        throttle.flush()
        #expect(log.text == "warning first\nwarning first … and 1 more like it in the last 10 s")
        // The window is gone: the next one is logged at once.
        throttle.warning("bad request", "third", logger: log.logger)
        #expect(log.text.hasSuffix("\nwarning third"))
    }

    @Test("grouped writes thousands with commas")
    func grouped() {
        #expect(LogThrottle.grouped(7) == "7")
        #expect(LogThrottle.grouped(4980) == "4,980")
        #expect(LogThrottle.grouped(1_234_567) == "1,234,567")
    }
}
