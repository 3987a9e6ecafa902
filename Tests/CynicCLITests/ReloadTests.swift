import CynicTestSupport
import Foundation
import Testing

@Suite("Reloading while serving")
struct ReloadTests {
    @Test("SIGHUP: a changed service rebinds, an unchanged one keeps its open connection, a bad file changes nothing")
    func sighup() throws {
        let folder = TemporaryFolder()
        let (steadyPort, first, second) = (freePort(), freePort(), freePort())
        let file = try folder.write("cynic.yaml", """
            services:
              steady:
                behaviour: noresponse
                port: \(steadyPort)
              moving:
                behaviour: random
                port: \(first)
                params: { length: 3 }
            log_sink: { enabled: false }
            """)
        let cynic = try CynicProcess(["-c", file])
        let ports = try cynic.waitForServices(2)
        #expect(ports["steady"] == steadyPort)
        let held = try SocketClient(port: steadyPort)
        #expect(try SocketClient(port: first).receiveAll().bytes.count == 3)

        // A mistake: refused whole, the running set stays.
        try folder.write("cynic.yaml", "services:\n  moving:\n    port: nope\n")
        kill(cynic.process.processIdentifier, SIGHUP)
        try cynic.waitFor("configuration reload refused, the running services stay", inError: true)
        #expect(try SocketClient(port: first).receiveAll().bytes.count == 3)

        try folder.write("cynic.yaml", """
            services:
              steady:
                behaviour: noresponse
                port: \(steadyPort)
              moving:
                behaviour: random
                port: \(second)
                params: { length: 5 }
            log_sink: { enabled: false }
            """)
        kill(cynic.process.processIdentifier, SIGHUP)
        try cynic.waitFor("configuration reloaded", inError: true)
        #expect(try SocketClient(port: second).receiveAll().bytes.count == 5)
        #expect(throws: SocketClient.ConnectFailed.self) { try SocketClient(port: first) }
        // The unchanged service kept its listener and the connection it held.
        #expect(held.tcpState == 1 /* TCP_ESTABLISHED */)
        #expect(held.receive(timeout: 0.3) == .timedOut)
        #expect(held.send("still there") == 0)
        #expect(!cynic.standardError.contains("service steady"), "steady was never touched")
    }
}

@Suite("Hot swap from the command line")
struct CommandLineSwapTests {
    static func plugin(_ answer: String) -> String {
        """
        #include <cynic/plugin.h>
        static const cynic_host *host;
        static void *create(const cynic_host *h) { host = h; return NULL; }
        static void *conn_open(void *instance, cynic_conn *conn) {
            (void)instance;
            host->send(conn, "\(answer)", \(answer.utf8.count));
            host->wait(conn, 60000);
            host->close(conn);
            return NULL;
        }
        static void conn_peer_closed(void *state, cynic_conn *conn) { (void)state; host->cancel_pending(conn); host->close(conn); }
        static const cynic_plugin plugin = {
            .abi_version = CYNIC_ABI_VERSION, .struct_size = sizeof(cynic_plugin), .name = "holder",
            .create = create, .conn_open = conn_open, .conn_peer_closed = conn_peer_closed,
        };
        CYNIC_EXPORT const cynic_plugin *cynic_plugin_entry(void) { return &plugin; }
        """
    }

    @Test("cynic plugins shows a running cynic's generations and the connections each holds")
    func liveGenerations() throws {
        let folder = TemporaryFolder(), staging = TemporaryFolder()
        try compileCPlugin(Self.plugin("one"), named: "holder", into: folder.path)
        let cynic = try CynicProcess(["serve", "holder", "--port", "0", "--plugin-dir", folder.path])
        let port = try #require(try cynic.waitForServices(1)["holder"])
        let held = try SocketClient(port: port)
        #expect(held.receive() == .bytes(Array("one".utf8)))
        let built = try compileCPlugin(Self.plugin("two"), named: "holder", into: staging.path)
        #expect(rename(built, folder.file("holder.so")) == 0)
        try cynic.waitFor("swapped holder: version ", inError: true)
        #expect(cynic.standardError.contains("1 connection(s) stay on "))
        let fresh = try SocketClient(port: port)
        #expect(fresh.receive() == .bytes(Array("two".utf8)))

        let listing = try runProgram(Paths.cynic, ["plugins", "--plugin-dir", folder.path])
        let pid = cynic.process.processIdentifier
        let live = try #require(listing.standardOutput.components(separatedBy: "running cynic, pid \(pid):\n").last)
        #expect(live.contains("  services:\n    holder: behaviour holder, listening on 127.0.0.1:\(port), 2 open connection(s)"), "\(listing.output)")
        #expect(live.contains("(\(folder.file("holder.so"))), 1 connection(s), unloaded when unused"), "\(listing.output)")
        #expect(live.contains("older version "), "\(listing.output)")
        #expect(live.contains(": 1 connection(s) still on it"), "\(listing.output)")
    }
}
