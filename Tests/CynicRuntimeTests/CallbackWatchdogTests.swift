import CynicPlugins
import CynicRuntime
import CynicTestSupport
import Foundation
import Testing

/// The watchdog on a real event loop, in-process: a behaviour busy in conn_open for 1.2 s,
/// sending through a shaper all the while, and at least 300 times (on a loaded machine its
/// thread may get the processor for a fraction of the 1.2 s).
let busySenderPlugin = """
    #include <cynic/plugin.h>
    #include <time.h>
    static const cynic_host *host;
    static double now(void) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
    }
    static void *create(const cynic_host *h) { host = h; return NULL; }
    static void *conn_open(void *instance, cynic_conn *conn) {
        (void)instance;
        double start = now(), last = start;
        int sent = 0;
        while (now() - start < 1.2 || sent < 300) {
            if (now() - last > 0.001) { host->send(conn, "x", 1); sent++; last = now(); }
        }
        host->close(conn);
        return NULL;
    }
    static const cynic_plugin plugin = {
        .abi_version = CYNIC_ABI_VERSION, .struct_size = sizeof(cynic_plugin), .name = "busy-sender",
        .create = create, .conn_open = conn_open,
    };
    CYNIC_EXPORT const cynic_plugin *cynic_plugin_entry(void) { return &plugin; }
    """

@Suite("The callback watchdog")
struct CallbackWatchdogTests {
    @Test("a busy conn_open is one episode, even with a shaper's send called inside it hundreds of times")
    func nestedShaperCallsAreOneEpisode() async throws {
        let folder = TemporaryFolder()
        var catalog = PluginCatalog()
        catalog.add(file: try compileCPlugin(busySenderPlugin, named: "busy-sender", into: folder.path))
        catalog.add(file: try #require(TestServices.shipped.plugins["limit"]).file)
        let log = CapturedLog()
        let watchdog = CallbackWatchdog(threshold: .milliseconds(300), logger: log.logger)
        defer { watchdog.stop() }
        let service = try await TestServices.start("busy-sender", shapers: ["limit:bytes=10000000000"], catalog: catalog)
        defer { Task { await service.stop() } }

        let (bytes, end) = try await offThePool { try SocketClient(port: service.port).receiveAll(timeout: 20) }
        #expect(bytes.count >= 300, "\(bytes.count) bytes")
        #expect(end == .endOfFile)
        let ended = "conn_open of plugin 'busy-sender' (service busy-sender) returned after "
        let returned = try await offThePool { log.waitFor(ended) }
        #expect(returned, "\(log.text)")
        let lines = log.text.split(separator: "\n").filter { $0.contains("busy-sender") }
        #expect(lines.filter { $0.contains("has been running for") }.count == 1, "\(log.text)")
        #expect(lines.count == 2, "\(log.text)")
        #expect(!log.text.contains("plugin 'limit'"), "the shaper's send is part of the behaviour's call")
    }
}
