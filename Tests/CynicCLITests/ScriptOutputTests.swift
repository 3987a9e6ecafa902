import CynicTestSupport
import Foundation
import Testing

/// What scripts and test fixtures read from cynic: the JSON start line, `cynic plugins --json`,
/// `--version`, and the one way `--param` is refused.
@Suite("Output for scripts")
struct ScriptOutputTests {
    /// CYNIC_ABI_VERSION, as the header an author builds against says it.
    static func headerABI() throws -> Int {
        let header = try String(contentsOfFile: Paths.include + "/cynic/plugin.h", encoding: .utf8)
        let line = try #require(header.split(separator: "\n").first { $0.hasPrefix("#define CYNIC_ABI_VERSION ") })
        return try #require(Int(line.dropFirst("#define CYNIC_ABI_VERSION ".count).filter(\.isNumber)))
    }

    /// The address the control API at `api` lists for a service, asked with curl as a script would.
    static func listedAddress(of service: String, api: String) throws -> (address: String?, output: String) {
        let listed = try runProgram("curl", ["-sS", "--max-time", "10", api + "/services/" + service])
        let object = try? JSONSerialization.jsonObject(with: Data(listed.standardOutput.utf8)) as? [String: Any]
        return (object?["listen"] as? String, listed.output)
    }

    @Test("serve --json: standard output is one JSON line whose port and control API URL are the real ones")
    func serveStartLine() throws {
        let cynic = try CynicProcess(["serve", "http-json", "--port", "0", "--api", "127.0.0.1:0", "--json"])
        let start = try cynic.waitForStartLine()
        let service = try #require(start.service("http-json"), "\(start.text)")
        #expect(service["behaviour"] as? String == "http-json")
        #expect(service["host"] as? String == "127.0.0.1")
        let port = try #require(start.port("http-json"))
        #expect(port > 0)
        #expect(service["listen"] as? String == "127.0.0.1:\(port)")
        #expect(service["unix"] is NSNull && service["tls"] is NSNull, "\(start.text)")
        #expect(start.object["pid"] as? Int == Int(cynic.process.processIdentifier))

        // The port is the one that answers...
        let curl = try runProgram("curl", ["-sS", "--max-time", "10", "http://127.0.0.1:\(port)/"])
        #expect(curl.standardOutput == #"{"message": "Hello, World!"}"#, "\(curl.output)")
        // ...and so is the control API, which names the same service at the same address.
        let api = try #require(start.object["control_api"] as? String, "\(start.text)")
        let listed = try Self.listedAddress(of: "http-json", api: api)
        #expect(listed.address == "127.0.0.1:\(port)", "\(listed.output)")

        // Nothing but that line: no prose before or after it.
        usleep(300_000)
        #expect(cynic.standardOutput == start.text + "\n", "\(cynic.standardOutput)")
    }

    @Test("serve --isolate --json: the one line names the supervisor's API address and pid, and SIGTERM to that pid stops cynic")
    func isolatedStartLine() throws {
        let cynic = try CynicProcess(["serve", "http-json", "--port", "0", "--api", "127.0.0.1:0", "--isolate", "--json"])
        let start = try cynic.waitForStartLine()
        let port = try #require(start.port("http-json"), "\(start.text)")
        // The pid a fixture signals is the supervisor's (the process it started), not the worker's.
        #expect(start.object["pid"] as? Int == Int(cynic.process.processIdentifier), "\(start.text)")
        let api = try #require(start.object["control_api"] as? String, "\(start.text)")
        let listed = try Self.listedAddress(of: "http-json", api: api)
        #expect(listed.address == "127.0.0.1:\(port)", "\(listed.output)")
        usleep(300_000)
        #expect(cynic.standardOutput == start.text + "\n", "nothing but the line, from either process: \(cynic.standardOutput)")
        kill(cynic.process.processIdentifier, SIGTERM)
        #expect(cynic.waitForExit(timeout: 20) == 0, "\(cynic.standardError)")
    }

    @Test("run --json with a configuration: every service with its bound port; a Unix socket and TLS say so")
    func runStartLine() throws {
        let folder = TemporaryFolder()
        let socket = folder.file("random.sock")
        let config = try folder.write("cynic.yaml", """
            services:
              tiny:
                behaviour: random
                port: 0
                params: {length: 3}
              local:
                behaviour: random
                unix: \(socket)
              secure:
                behaviour: http-json
                port: 0
                tls: valid
            log_sink:
              enabled: false
            """)
        let ca = TemporaryFolder("cynic-ca")
        let cynic = try CynicProcess(["-c", config, "--no-api", "--json", "--ca-dir", ca.file("ca")])
        let start = try cynic.waitForStartLine()
        #expect(start.services.count == 3, "\(start.text)")
        #expect(start.object["control_api"] is NSNull && start.object["log_sink"] is NSNull, "\(start.text)")

        let tiny = try #require(start.port("tiny"), "\(start.text)")
        #expect(try SocketClient(port: tiny).receiveAll().bytes.count == 3)

        let local = try #require(start.service("local"))
        #expect(local["unix"] as? String == socket && local["port"] is NSNull && local["host"] is NSNull, "\(start.text)")
        #expect(try SocketClient(unixPath: socket).receiveAll().bytes.count == 7)

        let secure = try #require(start.service("secure"))
        #expect((secure["tls"] as? [String: Any])?["profile"] as? String == "valid", "\(start.text)")
        let caCertificate = try #require(start.object["ca_certificate"] as? String, "\(start.text)")
        let port = try #require(start.port("secure"))
        let curl = try runProgram("curl", ["-sS", "--max-time", "10", "--cacert", caCertificate, "https://localhost:\(port)/"])
        #expect(curl.status == 0 && curl.standardOutput.contains("Hello, World!"), "\(curl.output)")
    }

    @Test("with --json the log sink's records go to standard error: standard output stays JSON")
    func logRecordsLeaveStandardOutputAlone() throws {
        let folder = TemporaryFolder()
        let sink = folder.file("log.sock")
        let cynic = try CynicProcess(["serve", "random", "--port", "0", "--log-sink", sink, "--json"])
        let start = try cynic.waitForStartLine()
        #expect(start.object["log_sink"] as? String == sink, "\(start.text)")

        let payload = Array(#"{"level": "warning", "name": "tests.fixture", "message": "from the suite"}"#.utf8)
        let length = UInt32(payload.count).bigEndian
        let frame = withUnsafeBytes(of: length) { Array($0) } + payload
        let client = try SocketClient(unixPath: sink)
        #expect(client.send(frame) == 0)
        try cynic.waitFor("from the suite", inError: true)
        #expect(cynic.standardOutput == start.text + "\n", "\(cynic.standardOutput)")
    }

    @Test("without --json the start lines are prose, as before, and the port is the one that answers")
    func proseStartLines() throws {
        let cynic = try CynicProcess(["serve", "random", "--port", "0", "--param", "length=4"])
        let port = try #require(try cynic.waitForServices(1)["random"])
        #expect(cynic.standardOutput.hasPrefix("service random: behaviour random, listening on 127.0.0.1:\(port)\n"),
                "\(cynic.standardOutput)")
        #expect(try SocketClient(port: port).receiveAll().bytes.count == 4)
    }

    @Test("cynic plugins --json parses: every shipped plugin with its file and parameters, each refused file with its reason")
    func pluginsJSON() throws {
        let folder = TemporaryFolder()
        try folder.write("broken.so", "not an ELF file")
        let result = try runProgram(Paths.cynic, ["plugins", "--json", "--plugin-dir", folder.path])
        #expect(result.status == 0, "\(result.output)")
        let listing = try #require(try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any],
                                   "\(result.output)")
        let plugins = listing["plugins"] as? [[String: Any]] ?? []
        let slow = try #require(plugins.first { $0["name"] as? String == "http-slow" }, "\(result.output)")
        #expect(slow["file"] as? String == Paths.shippedPlugin("http-slow"))
        #expect(slow["default_port"] as? Int == 2003)
        #expect(slow["kind"] as? String == "behaviour")
        let interval = (slow["parameters"] as? [[String: Any]])?.first { $0["name"] as? String == "interval_ms" }
        #expect(interval?["default"] as? String == "30000", "\(String(describing: interval))")
        #expect(plugins.first { $0["name"] as? String == "latency" }?["kind"] as? String == "shaper")
        let refused = listing["refused"] as? [[String: Any]] ?? []
        #expect(refused.contains { $0["file"] as? String == folder.file("broken.so") && ($0["reason"] as? String ?? "").contains("not a loadable shared object") },
                "\(result.output)")
        let abi = try Self.headerABI()
        let cynic = listing["cynic"] as? [String: Any]
        #expect(cynic?["abi"] as? Int == abi)
    }

    @Test("--version: one line, the version the control API reports, the header's ABI beside it; `cynic plugins` starts with it")
    func version() throws {
        let result = try runProgram(Paths.cynic, ["--version"])
        #expect(result.status == 0, "\(result.output)")
        let api = try CynicWithAPI()
        let root = try api.call("GET", "/").object
        let version = try #require(root["version"] as? String)
        let abi = try Self.headerABI()
        #expect(result.standardOutput == "cynic \(version) (plugin ABI \(abi))\n", "\(result.output)")

        let listing = try runProgram(Paths.cynic, ["plugins"])
        #expect(listing.standardOutput.hasPrefix(result.standardOutput + "\n"), "\(listing.output)")
        let json = try runProgram(Paths.cynic, ["plugins", "--json"])
        let cynic = (try JSONSerialization.jsonObject(with: Data(json.standardOutput.utf8)) as? [String: Any])?["cynic"] as? [String: Any]
        #expect(cynic?["version"] as? String == version)
    }

    @Test("--param without NAME= is refused by every command that takes it, with the same line, before anything runs",
          arguments: [["serve", "random", "--port", "0"], ["check", Paths.shippedPlugin("random")],
                      ["ctl", "create", "x", "random"], ["ctl", "set", "x"]])
    func malformedParameter(command: [String]) throws {
        for bad in ["length", "=3"] {
            // The API address is never reached: the parser refuses first.
            let result = try runProgram(Paths.cynic, command + ["--param", bad], environment: ["CYNIC_API": "http://127.0.0.1:1"])
            #expect(result.status == 64, "\(result.output)")
            #expect(result.standardError.hasPrefix("Error: The value '\(bad)' is invalid for '--param <NAME=VALUE>'\n"), "\(result.output)")
            #expect(result.standardOutput.isEmpty)
        }
    }
}

@Suite("README: output for scripts")
struct ReadmeScriptOutputTests {
    @Test("the README's pytest fixture reads the port from the --json line, and a test through it gets http-slow's answer",
          .enabled(if: pytestIsInstalled || ProcessInfo.processInfo.environment["CI"] == "true"))
    func fixture() throws {
        let fixture = try #require(Readme.blocks("python").first { $0.contains("\"--json\"") })
        let folder = TemporaryFolder()
        try folder.write("test_readme_fixture.py", fixture + """


            import socket
            import time


            def test_through_the_fixture(slow_http):
                started = time.monotonic()
                with socket.create_connection(slow_http, timeout=10) as client:
                    client.sendall(b"GET / HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n")
                    head = client.recv(4096)
                    assert head.startswith(b"HTTP/1.1 200 OK\\r\\n"), head
                    body = b""
                    while len(body) < 3:  # a byte every 100 ms
                        body += client.recv(1)
                assert time.monotonic() - started >= 0.15

            """)
        let path = Paths.buildFolder + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
        let result = try runProgram("/usr/bin/env", ["python3", "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:cynic",
                                                     folder.file("test_readme_fixture.py")],
                                    environment: ["PATH": path, "PYTHONDONTWRITEBYTECODE": "1"], timeout: 120)
        #expect(result.status == 0, "\(result.output)")
        #expect(result.standardOutput.contains("1 passed"), "\(result.output)")
    }

    @Test("the README's sample start line has every key of a real one, and no other")
    func sampleLine() throws {
        let sample = try #require(Readme.text.split(separator: "\n").first { $0.hasPrefix("    {\"ca_certificate\"") })
        let documented = try #require(try JSONSerialization.jsonObject(with: Data(sample.utf8)) as? [String: Any])
        let cynic = try CynicProcess(["serve", "http-slow", "--port", "0", "--api", "127.0.0.1:0", "--json"])
        let real = try cynic.waitForStartLine().object
        #expect(Set(documented.keys) == Set(real.keys))
        let documentedService = try #require((documented["services"] as? [[String: Any]])?.first)
        let realService = try #require((real["services"] as? [[String: Any]])?.first)
        #expect(Set(documentedService.keys) == Set(realService.keys))
    }
}
