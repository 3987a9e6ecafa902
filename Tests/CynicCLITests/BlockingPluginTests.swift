import CynicTestSupport
import Foundation
import Testing

/// What a user sees when a plugin blocks its event loop (issue 8): one warning per episode, and
/// a SIGTERM that ends cynic whatever the plugin does. Serialized: a spinning plugin burns a
/// core, and the timings here are the point.
@Suite("A plugin that blocks an event loop", .serialized)
struct BlockingPluginTests {
    /// Sleeps 3 s in conn_open, then greets and closes.
    static let sleepy = """
        #include <cynic/plugin.h>
        #include <unistd.h>
        static const cynic_host *host;
        static void *create(const cynic_host *h) { host = h; return NULL; }
        static void *conn_open(void *instance, cynic_conn *conn) {
            (void)instance;
            sleep(3);
            host->send(conn, "awake", 5);
            host->close(conn);
            return NULL;
        }
        static const cynic_plugin plugin = {
            .abi_version = CYNIC_ABI_VERSION, .struct_size = sizeof(cynic_plugin), .name = "sleepy",
            .create = create, .conn_open = conn_open,
        };
        CYNIC_EXPORT const cynic_plugin *cynic_plugin_entry(void) { return &plugin; }
        """

    /// Sends forever from conn_open, without `then`, ignoring CYNIC_ERR_FULL: its event loop
    /// never gets back.
    static let spinner = """
        #include <cynic/plugin.h>
        static const cynic_host *host;
        static char chunk[65536];
        static void *create(const cynic_host *h) { host = h; return NULL; }
        static void *conn_open(void *instance, cynic_conn *conn) {
            (void)instance;
            for (;;) host->send(conn, chunk, sizeof chunk);
            return NULL;
        }
        static const cynic_plugin plugin = {
            .abi_version = CYNIC_ABI_VERSION, .struct_size = sizeof(cynic_plugin), .name = "spinner",
            .create = create, .conn_open = conn_open,
        };
        CYNIC_EXPORT const cynic_plugin *cynic_plugin_entry(void) { return &plugin; }
        """

    static func lines(_ text: String, containing part: String) -> [Substring] {
        text.split(separator: "\n").filter { $0.contains(part) }
    }

    @Test("a 3 s sleep in conn_open: one warning naming the plugin, the callback and the service, one when it returns; other services keep answering")
    func sleepInConnOpen() throws {
        let folder = TemporaryFolder()
        try compileCPlugin(Self.sleepy, named: "sleepy", into: folder.path)
        let file = try folder.write("cynic.yaml", """
            services:
              slow-door:
                behaviour: sleepy
                port: 0
              quick:
                behaviour: random
                port: 0
                params: { length: 3 }
            log_sink: { enabled: false }
            """)
        let cynic = try CynicProcess(["-c", file, "--plugin-dir", folder.path, "--slow-callback-ms", "500"])
        let ports = try cynic.waitForServices(2)
        let sleeper = try SocketClient(port: try #require(ports["slow-door"]))
        let started = Date()
        // While one event loop sleeps, the other services still answer: every connection, those
        // on the sleeping loop late, the rest at once.
        for _ in 0..<10 {
            let answer = try SocketClient(port: try #require(ports["quick"])).receiveAll(timeout: 10)
            #expect(answer.bytes.count == 3 && answer.end == .endOfFile)
        }
        #expect(sleeper.receiveAll(timeout: 10).bytes == Array("awake".utf8))
        try cynic.waitFor("returned after", inError: true, timeout: 10)
        let waited = Date().timeIntervalSince(started)

        let warnings = Self.lines(cynic.standardError, containing: "has been running for")
        #expect(warnings.count == 1, "one line per episode:\n\(cynic.standardError)")
        #expect(warnings.first?.contains("slow plugin callback: conn_open of plugin 'sleepy' (service slow-door) has been running for 0.") == true,
                "\(cynic.standardError)")
        let returned = try #require(Self.lines(cynic.standardError, containing: "returned after").first)
        #expect(returned.contains("conn_open of plugin 'sleepy' (service slow-door) returned after "))
        let seconds = try #require(Double(returned.split(separator: " ").dropLast().last ?? ""))
        #expect(seconds >= 2.5 && seconds <= 4.5, "\(returned)")
        #expect(waited < 10)
        cynic.stop()
    }

    @Test("a plugin spinning in conn_open, then SIGTERM: cynic exits within the drain bound and a margin, non-zero, naming what was stuck")
    func spinningPluginAndSigterm() throws {
        let folder = TemporaryFolder()
        try compileCPlugin(Self.spinner, named: "spinner", into: folder.path)
        let cynic = try CynicProcess(["serve", "spinner", "--port", "0", "--plugin-dir", folder.path, "--drain-seconds", "1"])
        let port = try #require(try cynic.waitForServices(1)["spinner"])
        let client = try SocketClient(port: port)
        try cynic.waitFor("conn_open of plugin 'spinner' (service spinner) has been running for", inError: true, timeout: 10)
        let signalled = Date()
        kill(cynic.process.processIdentifier, SIGTERM)
        let status = cynic.waitForExit(timeout: 20)
        let took = Date().timeIntervalSince(signalled)
        #expect(status == 1, "\(cynic.standardError)")
        // The drain (1 s) plus the grace (2 s), with room for a loaded machine.
        #expect(took >= 2.5 && took < 8, "took \(took) s")
        #expect(cynic.standardError.contains(
            "stopping did not finish within 3 s; exiting without waiting for plugin code still running: conn_open of plugin 'spinner' (service spinner) on thread NIO-ELT-"),
                "\(cynic.standardError)")
        _ = client
    }

    @Test("SIGTERM with a noresponse connection open: cynic closes it after the drain bound and exits 0")
    func drainThenClose() throws {
        let cynic = try CynicProcess(["serve", "noresponse", "--port", "0", "--drain-seconds", "1"])
        let port = try #require(try cynic.waitForServices(1)["noresponse"])
        let client = try SocketClient(port: port)
        #expect(client.receive(timeout: 0.3) == .timedOut)
        let signalled = Date()
        kill(cynic.process.processIdentifier, SIGTERM)
        #expect(client.receiveAll(timeout: 10).end == .endOfFile)
        let closedAfter = Date().timeIntervalSince(signalled)
        let status = cynic.waitForExit(timeout: 10)
        #expect(status == 0, "\(cynic.standardError)")
        #expect(closedAfter >= 0.9 && closedAfter < 5, "closed after \(closedAfter) s")
        #expect(cynic.standardError.contains("closing 1 connection(s) still open after 1.0 s"), "\(cynic.standardError)")
        // Stopped accepting at once.
        #expect(throws: SocketClient.ConnectFailed.self) { try SocketClient(port: port) }
    }

    @Test("a second SIGTERM exits at once, without waiting for the drain bound")
    func secondSigterm() throws {
        let cynic = try CynicProcess(["serve", "noresponse", "--port", "0", "--drain-seconds", "60", "--log-level", "debug"])
        let port = try #require(try cynic.waitForServices(1)["noresponse"])
        let client = try SocketClient(port: port)
        // Accepted, not only queued: a connection still in the backlog is refused at the stop,
        // the drain then has nothing to wait for, and cynic exits before the second signal.
        try cynic.waitFor("connection opened", inError: true, timeout: 10)
        kill(cynic.process.processIdentifier, SIGTERM)
        try cynic.waitFor("stopping: no new connections; open ones have 60.0 s to end", inError: true, timeout: 10)
        let signalled = Date()
        kill(cynic.process.processIdentifier, SIGTERM)
        let status = cynic.waitForExit(timeout: 10)
        #expect(Date().timeIntervalSince(signalled) < 3)
        #expect(status == 0, "\(cynic.standardError)")
        #expect(cynic.standardError.contains("cynic: second SIGTERM; exiting"), "\(cynic.standardError)")
        #expect(client.receiveAll(timeout: 5).end == .endOfFile)
    }
}
