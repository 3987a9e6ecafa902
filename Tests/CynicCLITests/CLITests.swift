import CynicTestSupport
import Foundation
import Testing

/// The `cynic` command line, run as a user runs it.
@Suite("Command line")
struct CLITests {
    @Test("cynic plugins lists every shipped behaviour with its file, ABI, parameters and defaults")
    func plugins() throws {
        let result = try runProgram(Paths.cynic, ["plugins"])
        #expect(result.status == 0, "\(result.output)")
        for name in ["reset", "random", "noresponse", "http-html", "http-json", "http-nobody", "http-slow"] {
            #expect(result.standardOutput.contains("\n\(name) — ") || result.standardOutput.hasPrefix("\(name) — "), "\(name)")
            #expect(result.standardOutput.contains("file: \(Paths.shippedPlugin(name))"))
        }
        #expect(result.standardOutput.contains("param interval_ms: uint32_t, default 30000"))
        #expect(result.standardOutput.contains("param length: uint64_t, default 7"))
        #expect(result.standardOutput.contains("param body_file: const char *, default unset"))
        #expect(result.standardOutput.contains("ABI 1, HTTP/1.x behaviour, default port 2003, links the Swift runtime: stays mapped once loaded"))
    }

    @Test("cynic plugins shows a refused file with its reason")
    func pluginsShowsRefusals() throws {
        let folder = TemporaryFolder()
        try folder.write("broken.so", "not an ELF file")
        let result = try runProgram(Paths.cynic, ["plugins", "--plugin-dir", folder.path])
        #expect(result.status == 0)
        #expect(result.standardOutput.contains("refused plugin \(folder.path)/broken.so: not a loadable shared object"))
    }

    @Test("cynic serve runs one service; port 0 picks a port and the line says which")
    func serve() throws {
        let cynic = try CynicProcess(["serve", "random", "--port", "0", "--param", "length=5"])
        let port = try #require(try cynic.waitForServices(1)["random"])
        let client = try SocketClient(port: port)
        let (bytes, end) = client.receiveAll()
        #expect(bytes.count == 5)
        #expect(end == .endOfFile)
    }

    @Test("cynic serve on a Unix socket")
    func serveUnix() throws {
        let folder = TemporaryFolder()
        let path = folder.file("random.sock")
        let cynic = try CynicProcess(["serve", "random", "--unix", path, "--param", "length=3"])
        try cynic.waitFor("listening on unix:\(path)")
        let client = try SocketClient(unixPath: path)
        #expect(client.receiveAll().bytes.count == 3)
    }

    @Test("bad input is one clear line and a non-zero exit", arguments: [
        (["serve", "nonexistent", "--port", "0"], "service 'nonexistent': unknown behaviour 'nonexistent' (available: "),
        (["serve", "random", "--port", "0", "--param", "length=abc"], "--param length: service 'random': parameter 'length' of 'random' expects an unsigned 64-bit integer"),
        (["serve", "random", "--port", "0", "--param", "size=3"], "--param size: service 'random': unknown parameter 'size' for behaviour 'random' (known: length)"),
        (["serve", "random", "--port", "70000"], "--port 70000: expected 0-65535"),
        (["serve", "http-json", "--port", "0", "--param", "body_file=/nonexistent/x.json"], "/nonexistent/x.json"),
        (["--plugin-dir", "/nonexistent/dir"], "--plugin-dir /nonexistent/dir: not a folder"),
        (["-c", "/nonexistent/cynic.yaml"], "/nonexistent/cynic.yaml: cannot read the file: "),
    ])
    func badInput(arguments: [String], message: String) throws {
        let result = try runProgram(Paths.cynic, arguments + ["--no-log-sink"].filter { _ in arguments.first != "serve" })
        #expect(result.status != 0)
        #expect(result.standardError.contains(message), "\(result.output)")
        #expect(!result.standardError.contains("Fatal error"), "\(result.output)")
        let lines = result.standardError.split(separator: "\n").filter { !$0.hasPrefix("Usage:") && !$0.contains("See 'cynic") && !$0.isEmpty }
        #expect(lines.count == 1, "one line, got: \(result.standardError)")
    }

    @Test("a FIFO or /dev/zero as the configuration file: one line saying what it is, exit 1, at once")
    func configurationNotAFile() throws {
        let folder = TemporaryFolder()
        let fifo = folder.file("cynic.yaml")
        #expect(mkfifo(fifo, 0o600) == 0)
        for (path, kind) in [(fifo, "a FIFO"), ("/dev/zero", "a character device")] {
            let started = Date()
            // A blocking open of the FIFO would hang until the timeout kills it (and throws).
            let result = try runProgram(Paths.cynic, ["-c", path, "--no-log-sink"], timeout: 30)
            #expect(result.status == 1, "\(result.output)")
            #expect(result.standardError == "cynic: \(path): not a regular file (\(kind))\n", "\(result.output)")
            #expect(Date().timeIntervalSince(started) < 20, "prompt, even on a loaded machine")
        }
    }

    @Test("under umask 000 the log-sink socket at a chosen path is 0600, and no staging folder is left beside it")
    func logSinkSocketMode() throws {
        let folder = TemporaryFolder()
        let socketPath = folder.file("log.sock")
        let config = try folder.write("cynic.yaml", "services:\n  r:\n    behaviour: random\n    port: 0\nlog_sink:\n  path: \(socketPath)\n")
        let cynic = try CynicProcess(["-c", "umask 000 && exec \"$0\" -c \"$1\"", Paths.cynic, config], executable: "/bin/sh")
        try cynic.waitFor("log sink listening on unix:\(socketPath)")
        var info = stat()
        #expect(lstat(socketPath, &info) == 0)
        #expect(info.st_mode & S_IFMT == S_IFSOCK)
        #expect(info.st_mode & 0o777 == 0o600, "mode \(String(info.st_mode & 0o777, radix: 8))")
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted() == ["cynic.yaml", "log.sock"])
        let client = try SocketClient(unixPath: socketPath)
        #expect(client.send("x") == 0, "still reachable by its owner")
    }

    @Test("a private folder others can write to is refused in one line naming it, before any plugin is loaded")
    func unsafePrivateFolder() throws {
        let runtime = TemporaryFolder()
        let folder = runtime.file("cynic")
        try #require(mkdir(folder, 0o700) == 0 && chmod(folder, 0o777) == 0)
        let result = try runProgram(Paths.cynic, ["serve", "random", "--port", "0"], environment: ["XDG_RUNTIME_DIR": runtime.path])
        #expect(result.status == 1)
        #expect(result.standardError == "cynic: cannot keep private copies of plugins in \(folder): its mode 0777 lets group "
            + "or others in; it must be 0700 (chmod 700 \(folder))\n")
    }

    @Test("started from a shell with a soft open-file limit of 256, cynic still holds 600 connections")
    func raisesOpenFileLimit() throws {
        let cynic = try CynicProcess(["-c", "ulimit -Sn 256 && exec \"$0\" serve noresponse --port 0", Paths.cynic],
                                     executable: "/bin/sh")
        let port = try #require(try cynic.waitForServices(1)["noresponse"])
        let clients = try (0..<600).map { _ in try SocketClient(port: port) }
        // Accepted, not merely queued: a server out of descriptors leaves connections in the
        // kernel's accept queue, where a client cannot tell. cynic's own count tells.
        let held = "listening on 127.0.0.1:\(port), 600 open connection(s)"
        let deadline = Date().addingTimeInterval(20)
        var status = ""
        while !status.contains(held), Date() < deadline {
            status = try runProgram(Paths.cynic, ["plugins"]).standardOutput
            if !status.contains(held) { usleep(100_000) }
        }
        #expect(status.contains(held), "\(status.split(separator: "\n").filter { $0.contains(":\(port)") })")
        #expect(clients.allSatisfy { $0.receive(timeout: 0) == .timedOut }, "a held connection was closed")
        let limits = try String(contentsOfFile: "/proc/\(cynic.process.processIdentifier)/limits", encoding: .utf8)
        let openFiles = try #require(limits.split(separator: "\n").first { $0.hasPrefix("Max open files") })
        let numbers = openFiles.split(separator: " ").compactMap { Int($0) }
        #expect(numbers.count == 2 && numbers[0] == numbers[1], "soft limit raised to the hard one: \(openFiles)")
        #expect(!cynic.standardError.contains("Too many open files"), "\(cynic.standardError)")
    }

    @Test("a port in use is one clear line and a non-zero exit")
    func portInUse() throws {
        let first = try CynicProcess(["serve", "reset", "--port", "0"])
        let port = try #require(try first.waitForServices(1)["reset"])
        let result = try runProgram(Paths.cynic, ["serve", "random", "--port", String(port)])
        #expect(result.status == 1)
        #expect(result.standardError == "cynic: cynic serve: service 'random': cannot listen on 127.0.0.1:\(port): address already in use\n")
    }

    @Test("cynic -d prints the default configuration, which -c reads back")
    func dumpConfig() throws {
        let result = try runProgram(Paths.cynic, ["-d"])
        #expect(result.status == 0)
        for (name, port) in [("http-html", 2000), ("http-json", 2001), ("http-nobody", 2002), ("http-slow", 2003),
                             ("reset", 2020), ("random", 2021), ("noresponse", 2022)] {
            #expect(result.standardOutput.contains("  \"\(name)\":\n"), "\(name)")
            #expect(result.standardOutput.contains("    port: \(port)\n"), "\(name)")
        }
        #expect(result.standardOutput.contains("# interval_ms: \"30000\"  # uint32_t: "))
        let folder = TemporaryFolder()
        let file = try folder.write("cynic.yaml", result.standardOutput)
        let again = try runProgram(Paths.cynic, ["-c", file, "-d"])
        #expect(again.status == 0, "\(again.output)")
        #expect(again.standardOutput == result.standardOutput)
    }

    @Test("cynic -c runs a file's services; two share a behaviour with different parameters")
    func configFile() throws {
        let folder = TemporaryFolder()
        let file = try folder.write("cynic.yaml", """
            services:
              three:
                behaviour: random
                port: 0
                params:
                  length: 3
              five:
                behaviour: random
                port: 0
                params: { length: 5 }
              slow:
                behaviour: http-slow
                port: 0
                params:
                  interval_ms: 1
            log_sink:
              path: \(folder.file("log.sock"))
            """)
        let cynic = try CynicProcess(["-c", file])
        let ports = try cynic.waitForServices(3)
        #expect(try SocketClient(port: #require(ports["three"])).receiveAll().bytes.count == 3)
        #expect(try SocketClient(port: #require(ports["five"])).receiveAll().bytes.count == 5)
        try cynic.waitFor("log sink listening on unix:\(folder.file("log.sock"))")
        // A Python test suite logs into cynic's console through the standard SocketHandler.
        let python = try runPython("""
            import logging, logging.handlers, sys
            log = logging.getLogger("suite.client")
            log.addHandler(logging.handlers.SocketHandler(sys.argv[1], None))
            log.warning("retrying after %s", "ECONNRESET")
            """, [folder.file("log.sock")])
        #expect(python.status == 0, "\(python.output)")
        try cynic.waitFor("suite.client] WARNING retrying after ECONNRESET")
    }

    @Test("a bad configuration names the file, the line, the key and what was expected")
    func badConfigFile() throws {
        let folder = TemporaryFolder()
        let file = try folder.write("bad.yaml", """
            services:
              api:
                behaviour: http-json
                port: eighty
            """)
        let result = try runProgram(Paths.cynic, ["-c", file])
        #expect(result.status == 1)
        #expect(result.standardError == "cynic: \(file):4:11: services.api.port: expected a port number (0-65535), got 'eighty'\n")
    }

    @Test("SIGTERM stops cynic cleanly with status 0")
    func stopsOnSIGTERM() throws {
        let cynic = try CynicProcess(["serve", "noresponse", "--port", "0"])
        let port = try #require(try cynic.waitForServices(1)["noresponse"])
        let client = try SocketClient(port: port)
        _ = client
        cynic.process.terminate()
        #expect(cynic.waitForExit(timeout: 20) == 0, "\(cynic.standardError)")
    }
}

/// The README's promise: `cynic` alone starts the seven services on their fixed ports.
@Suite("Default services", .serialized)
struct DefaultServicesTests {
    /// Every shipped behaviour with its default port (the shapers have none).
    static let ports = ["http-html": 2000, "http-json": 2001, "http-nobody": 2002, "http-slow": 2003,
                        "truncated": 2004, "chunked-malformed": 2005, "garbage-http": 2006, "huge": 2007,
                        "mislabelled": 2008, "status": 2009, "redirect-loop": 2010, "keepalive-race": 2011,
                        "drip": 2012, "empty": 2013, "reset": 2020, "random": 2021, "noresponse": 2022,
                        "accept-close": 2023, "never-accept": 2025, "zero-window": 2026,
                        "tls-hang": 2030, "tls-alert": 2031, "tls-plaintext": 2032, "tls-reset": 2033,
                        "tls-truncated": 2034]

    @Test("cynic starts every default service and the log sink; curl sees reset and JSON", .enabled(if: programExists("curl")))
    func defaults() throws {
        let folder = TemporaryFolder()
        let sink = folder.file("log.sock")
        let cynic = try CynicProcess(["--log-sink", sink])
        let ports = try cynic.waitForServices(DefaultServicesTests.ports.count)
        #expect(ports == DefaultServicesTests.ports)
        try cynic.waitFor("log sink listening on unix:\(sink)")
        let reset = try runProgram("curl", ["-sS", "--max-time", "10", "localhost:2020"])
        #expect(reset.status == 56)
        #expect(reset.standardError.contains("Connection reset by peer"))
        let json = try runProgram("curl", ["-sS", "--max-time", "10", "localhost:2001"])
        #expect(json.status == 0)
        #expect(json.standardOutput == #"{"message": "Hello, World!"}"#)
    }
}

/// Default services bind fixed ports: every test that starts them belongs to the serialized
/// "Default services" suite, or two would race for the same ports.
extension DefaultServicesTests {
    @Test("a plugin dropped into --plugin-dir with a default port is served at start")
    func pluginDirDefaultPort() throws {
        let folder = TemporaryFolder()
        let port = freePort()
        try compileCPlugin("""
            #include <cynic/plugin.h>
            static const cynic_host *host;
            static void *create(const cynic_host *h) { host = h; return NULL; }
            static void *conn_open(void *instance, cynic_conn *conn) {
                (void)instance;
                host->send(conn, "dropped in\\n", 11);
                host->close(conn);
                return NULL;
            }
            static const cynic_plugin plugin = {
                .abi_version = CYNIC_ABI_VERSION, .struct_size = sizeof(cynic_plugin),
                .name = "dropped", .default_port = \(port), .create = create, .conn_open = conn_open,
            };
            CYNIC_EXPORT const cynic_plugin *cynic_plugin_entry(void) { return &plugin; }
            """, named: "dropped", into: folder.path)
        try folder.write("broken.so", "garbage")
        let cynic = try CynicProcess(["--plugin-dir", folder.path, "--no-log-sink"])
        let ports = try cynic.waitForServices(DefaultServicesTests.ports.count + 1)
        #expect(ports["dropped"] == port)
        let client = try SocketClient(port: port)
        #expect(String(decoding: client.receiveAll().bytes, as: UTF8.self) == "dropped in\n")
        // The broken file is one warning; everything else serves.
        try cynic.waitFor("refused plugin \(folder.path)/broken.so: not a loadable shared object", inError: true)
    }
}

@Suite("Memory under a huge response")
struct HugeResponseTests {
    @Test("huge: a 2 GiB body streams with cynic's resident memory flat")
    func twoGigabytes() throws {
        let size = 2 << 30
        let cynic = try CynicProcess(["serve", "huge", "--port", "0", "--param", "size=\(size)"])
        let port = try #require(try cynic.waitForServices(1)["huge"])
        func residentKilobytes() throws -> Int {
            let status = try String(contentsOfFile: "/proc/\(cynic.process.processIdentifier)/status", encoding: .utf8)
            let line = try #require(status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") })
            return try #require(Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]))
        }
        let before = try residentKilobytes()
        let client = try SocketClient(port: port)
        client.send("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        var received = 0
        var peak = before
        var reads = 0
        while case .bytes(let chunk) = client.receive(max: 1 << 20, timeout: 30) {
            received += chunk.count
            reads += 1
            if reads % 256 == 0 { peak = max(peak, try residentKilobytes()) }
        }
        #expect(received > size, "the whole body and its headers: \(received) bytes")
        // Flat: the host holds a chunk or two, never the body.
        #expect(peak - before < 64 * 1024, "resident memory grew from \(before) KiB to \(peak) KiB")
    }
}
