import CynicTestSupport
import Foundation
import Testing

@Suite("Reloading while serving")
struct ReloadTests {
    @Test("SIGHUP: a changed service rebinds, an unchanged one keeps its open connection, a bad file changes nothing")
    func sighup() throws {
        let folder = TemporaryFolder()
        let (steadyPort, first, firstSecond) = (freePort(), freePort(), freePort())
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
        try cynic.waitFor("configuration reload refused, nothing changed: ", inError: true)
        #expect(try SocketClient(port: first).receiveAll().bytes.count == 3)

        // A port found free may be taken by another program before cynic binds it: then the
        // reload is refused as it should be, and another free port is tried.
        var second = firstSecond
        for attempt in 1...3 {
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
            let refusals = cynic.standardError.components(separatedBy: "address already in use").count
            kill(cynic.process.processIdentifier, SIGHUP)
            let deadline = Date().addingTimeInterval(30)
            while !cynic.standardError.contains("configuration reloaded"),
                  cynic.standardError.components(separatedBy: "address already in use").count == refusals, Date() < deadline {
                usleep(10_000)
            }
            if cynic.standardError.contains("configuration reloaded") || attempt == 3 { break }
            second = freePort()
        }
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

@Suite("Reloading is all or nothing")
struct AtomicReloadTests {
    static func file(removed: Bool, length: Int, busyPort: Int?, gonePort: Int, tunedPort: Int) -> String {
        var text = "services:\n"
        if !removed { text += "  gone:\n    behaviour: random\n    port: \(gonePort)\n    params: { length: 2 }\n" }
        text += "  tuned:\n    behaviour: random\n    port: \(tunedPort)\n    params: { length: \(length) }\n"
        if let busyPort { text += "  new-api:\n    behaviour: random\n    port: \(busyPort)\n    params: { length: 7 }\n" }
        return text + "log_sink: { enabled: false }\n"
    }

    @Test("a new service on a busy port refuses the whole reload: nothing changes; the same file once the port is free applies all of it")
    func busyPort() throws {
        let folder = TemporaryFolder()
        let (gonePort, tunedPort) = (freePort(), freePort())
        let file = try folder.write("cynic.yaml", Self.file(removed: false, length: 3, busyPort: nil, gonePort: gonePort, tunedPort: tunedPort))
        let cynic = try CynicProcess(["-c", file])
        _ = try cynic.waitForServices(2)

        var holder: ListeningSocket? = try ListeningSocket()
        let busyPort = holder!.port
        try folder.write("cynic.yaml", Self.file(removed: true, length: 5, busyPort: busyPort, gonePort: gonePort, tunedPort: tunedPort))
        kill(cynic.process.processIdentifier, SIGHUP)
        try cynic.waitFor("configuration reload refused, nothing changed: \(file):", inError: true)
        #expect(cynic.standardError.contains("service 'new-api': cannot listen on 127.0.0.1:\(busyPort): address already in use"),
                "\(cynic.standardError)")
        #expect(!cynic.standardError.contains("configuration reloaded"))
        #expect(!cynic.standardError.contains("removed"))
        #expect(try SocketClient(port: gonePort).receiveAll().bytes.count == 2, "the removed service still answers")
        #expect(try SocketClient(port: tunedPort).receiveAll().bytes.count == 3, "the changed one as before")

        holder = nil
        kill(cynic.process.processIdentifier, SIGHUP)
        try cynic.waitFor("configuration reloaded from \(file)", inError: true)
        #expect(throws: SocketClient.ConnectFailed.self) { try SocketClient(port: gonePort) }
        #expect(try SocketClient(port: tunedPort).receiveAll().bytes.count == 5)
        #expect(try SocketClient(port: busyPort).receiveAll().bytes.count == 7)
        #expect(cynic.standardError.contains("service tuned: behaviour random, listening on 127.0.0.1:\(tunedPort) (changed;"),
                "\(cynic.standardError)")
    }

    @Test("a changed parameter on the same port: no 'address in use', new connections get it, an open one finishes on the old setup")
    func changedOnSamePort() throws {
        let folder = TemporaryFolder()
        let port = freePort()
        let body = try folder.write("body.txt", "0123456789")
        func config(_ contentType: String) -> String {
            """
            services:
              slow:
                behaviour: http-slow
                port: \(port)
                params: { interval_ms: 150, body_file: \(body), content_type: \(contentType) }
            log_sink: { enabled: false }
            """
        }
        let file = try folder.write("cynic.yaml", config("text/old"))
        let cynic = try CynicProcess(["-c", file])
        _ = try cynic.waitForServices(1)
        let open = try SocketClient(port: port)
        open.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        guard case .bytes(let head) = open.receive() else { Issue.record("no response head"); return }
        #expect(String(decoding: head, as: UTF8.self).contains("text/old"))

        try folder.write("cynic.yaml", config("text/new"))
        kill(cynic.process.processIdentifier, SIGHUP)
        try cynic.waitFor("configuration reloaded", inError: true)
        #expect(!cynic.standardError.contains("address already in use"), "\(cynic.standardError)")
        #expect(cynic.standardError.contains("service slow: behaviour http-slow, listening on 127.0.0.1:\(port) (changed;"),
                "the listener was handed over, not closed and bound again: \(cynic.standardError)")
        let fresh = try SocketClient(port: port)
        fresh.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        guard case .bytes(let freshHead) = fresh.receive() else { Issue.record("no response head"); return }
        #expect(String(decoding: freshHead, as: UTF8.self).contains("text/new"))

        // The open connection ends its body as it began: every byte, then EOF.
        let rest = open.receiveAll(timeout: 20)
        let whole = String(decoding: head + rest.bytes, as: UTF8.self)
        #expect(whole.hasSuffix("\r\n\r\n0123456789"), "\(whole)")
        #expect(rest.end == .endOfFile)
    }

    @Test("new listen settings at the same port (zero-window's receive buffer): listened anew after the commit, on the same port")
    func listenSettingsChange() throws {
        let folder = TemporaryFolder()
        let port = freePort()
        func config(_ receiveBuffer: Int) -> String {
            "services:\n  window:\n    behaviour: zero-window\n    port: \(port)\n    params: { receive_buffer: \(receiveBuffer) }\nlog_sink: { enabled: false }\n"
        }
        let file = try folder.write("cynic.yaml", config(4096))
        let cynic = try CynicProcess(["-c", file])
        _ = try cynic.waitForServices(1)
        try folder.write("cynic.yaml", config(8192))
        kill(cynic.process.processIdentifier, SIGHUP)
        try cynic.waitFor("configuration reloaded from \(file)\n", inError: true)
        #expect(cynic.standardError.contains("service window: behaviour zero-window, listening anew on 127.0.0.1:\(port) (its listen settings changed)"),
                "\(cynic.standardError)")
        _ = try SocketClient(port: port)
    }

    @Test("listening beyond loopback: one warning naming the service, the address and why; on reload, for the new one only")
    func beyondLoopback() throws {
        let folder = TemporaryFolder()
        let one = "services:\n  open:\n    behaviour: random\n    host: 0.0.0.0\n    port: 0\n  local:\n    behaviour: random\n    port: 0\nlog_sink: { enabled: false }\n"
        let file = try folder.write("cynic.yaml", one)
        let cynic = try CynicProcess(["-c", file])
        let ports = try cynic.waitForServices(2)
        let openPort = try #require(ports["open"])
        try cynic.waitFor("beyond loopback", inError: true)
        #expect(cynic.standardError.contains("service 'open' listens on 0.0.0.0:\(openPort), beyond loopback: any host that can reach this machine can connect to it"),
                "\(cynic.standardError)")
        #expect(try SocketClient(port: openPort).receiveAll().bytes.count == 7, "reached on 127.0.0.1")

        try folder.write("cynic.yaml", one.replacingOccurrences(of: "log_sink", with: "  wide:\n    behaviour: random\n    host: \"::\"\n    port: 0\nlog_sink"))
        kill(cynic.process.processIdentifier, SIGHUP)
        try cynic.waitFor("configuration reloaded", inError: true)
        let warnings = cynic.standardError.split(separator: "\n").filter { $0.contains("beyond loopback") }
        #expect(warnings.count == 2, "\(warnings)")
        #expect(warnings.last?.contains("service 'wide' listens on [::]:") == true, "\(warnings)")
        #expect(!cynic.standardError.contains("service 'local' listens"))
    }
}

/// A plain listening socket on 127.0.0.1, holding a port as another program would.
private final class ListeningSocket {
    struct Failed: Error { let errno: Int32 }
    let fd: Int32
    let port: Int

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && listen(fd, 8) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        guard bound else {
            close(fd)
            throw Failed(errno: errno)
        }
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit { close(fd) }
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
