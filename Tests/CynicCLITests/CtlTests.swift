import CynicTestSupport
import Foundation
import Testing

/// `cynic ctl` against the real API of a real `cynic serve --api 127.0.0.1:0`, as a user runs it:
/// what it prints, what its exit status says, and what a client of the service then gets.
@Suite("cynic ctl against a running cynic")
struct CtlTests {
    /// A cynic serving the control API alone, and `cynic ctl` pointed at it.
    final class Session: Sendable {
        let cynic: CynicProcess
        let url: String

        init(_ arguments: [String] = []) throws {
            let api = try CynicWithAPI(arguments)
            cynic = api.cynic
            url = api.url
        }

        /// `cynic ctl --api URL arguments...`.
        func ctl(_ arguments: [String], environment: [String: String] = [:]) throws -> ProgramResult {
            try runProgram(Paths.cynic, ["ctl", "--api", url] + arguments, environment: environment, timeout: 60)
        }

        /// Runs it and requires exit status 0; its standard output.
        func succeeds(_ arguments: [String]) throws -> String {
            let result = try ctl(arguments)
            #expect(result.status == 0, "cynic ctl \(arguments.joined(separator: " ")): \(result.output)")
            return result.standardOutput
        }

        /// The service's address, as `service NAME --json` says.
        func port(of service: String) throws -> Int {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(succeeds(["service", service, "--json"]).utf8)) as? [String: Any])
            let listen = try #require(object["listen"] as? String)
            return try #require(Int(listen.split(separator: ":").last ?? ""))
        }
    }

    @Test("create prints the service with its real port; the services table lists it; a client gets the behaviour")
    func createAndList() throws {
        let session = try Session()
        #expect(try session.succeeds(["services"]) == "no services (add one with `cynic ctl create NAME BEHAVIOUR`)\n")
        let created = try session.succeeds(["create", "bytes", "random", "--param", "length=5"])
        let listen = try #require(created.split(separator: "\n").first { $0.hasPrefix("listen") }?.split(separator: " ").last)
        #expect(listen.hasPrefix("127.0.0.1:") && !listen.hasSuffix(":0"), "\(created)")
        #expect(created.contains("behaviour    random\n"), "\(created)")
        #expect(created.contains("parameters   length=5\n"), "\(created)")
        let port = try #require(Int(listen.split(separator: ":").last ?? ""))

        let client = try SocketClient(port: port)
        let (bytes, end) = client.receiveAll()
        #expect(bytes.count == 5)
        #expect(end == .endOfFile)

        let table = try session.succeeds(["services"]).split(separator: "\n")
        #expect(table.first == "NAME   BEHAVIOUR  LISTEN           ENABLED  OPEN/ACCEPTED  SHAPERS")
        let row = try #require(table.first { $0.hasPrefix("bytes ") }, "\(table)")
        #expect(row.contains(" random ") && row.contains(" \(listen) ") && row.contains(" yes "), "\(row)")
        #expect(row.split(separator: " ").suffix(2) == ["0/1", "-"], "none open, one accepted, no shaper: \(row)")
    }

    @Test("--json prints the API's JSON, and --api reads before or after the subcommand")
    func json() throws {
        let session = try Session()
        _ = try session.succeeds(["create", "quiet", "noresponse", "--seed", "7", "--disabled"])
        let result = try runProgram(Paths.cynic, ["ctl", "services", "--json", "--api", session.url])
        #expect(result.status == 0, "\(result.output)")
        let services = try #require(try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [[String: Any]])
        #expect(services.count == 1)
        #expect(services.first?["name"] as? String == "quiet")
        #expect(services.first?["enabled"] as? Bool == false)
        #expect(services.first?["seed"] as? Int == 7)
        #expect(services.first?["origin"] as? String == "api")
        #expect(try session.succeeds(["services"]).contains(" no "), "disabled shows as such")
    }

    @Test("shape adds a shaper the table shows; shapers lists it; unshape removes it")
    func shapers() throws {
        let session = try Session()
        _ = try session.succeeds(["create", "web", "http-json", "--shape", "latency:ms=1", "--shape", "latency:ms=2"])
        #expect(try session.succeeds(["shape", "web", "limit:bytes=100,probability=0.5,name=cut"])
            == "web: added shaper cut=limit downstream 0.5 (bytes=100)\n")
        let table = try session.succeeds(["services"])
        #expect(table.contains("latency=latency downstream 1, latency-2=latency downstream 1, cut=limit downstream 0.5"), "\(table)")
        #expect(try session.succeeds(["shapers", "web"]) == """
            NAME       SHAPER   DIRECTION   PROBABILITY  PARAMETERS
            latency    latency  downstream  1            ms=1
            latency-2  latency  downstream  1            ms=2
            cut        limit    downstream  0.5          bytes=100

            """)
        #expect(try session.succeeds(["unshape", "web", "latency"]) == "web: removed shaper latency\n")
        #expect(try session.succeeds(["service", "web"]).contains("shapers      latency-2=latency downstream 1 (ms=2)\n             cut=limit"))
        let again = try session.ctl(["unshape", "web", "latency"])
        #expect(again.status == 1)
        #expect(again.standardError == "cynic ctl: service 'web' has no shaper named 'latency'\n")
    }

    @Test("set --param replaces the parameters; disable refuses clients, enable takes them again, delete closes for good")
    func lifecycle() throws {
        let session = try Session()
        _ = try session.succeeds(["create", "bytes", "random", "--param", "length=5"])
        let port = try session.port(of: "bytes")
        let changed = try session.succeeds(["set", "bytes", "--param", "length=3"])
        #expect(changed.contains("parameters   length=3\n"), "\(changed)")
        #expect(try SocketClient(port: port).receiveAll().bytes.count == 3)

        #expect(try session.succeeds(["disable", "bytes"]) == "bytes disabled: 127.0.0.1:\(port) refuses new connections\n")
        #expect(throws: SocketClient.ConnectFailed.self) { try SocketClient(port: port) }
        #expect(try session.succeeds(["enable", "bytes"]) == "bytes enabled: listening on 127.0.0.1:\(port)\n")
        #expect(try SocketClient(port: port).receiveAll().bytes.count == 3)

        #expect(try session.succeeds(["delete", "bytes"]) == "deleted bytes\n")
        #expect(throws: SocketClient.ConnectFailed.self) { try SocketClient(port: port) }
        let gone = try session.ctl(["service", "bytes"])
        #expect(gone.status == 1)
        #expect(gone.standardError == "cynic ctl: service 'bytes' not found\n")
        #expect(gone.standardOutput.isEmpty)
    }

    @Test("a value the API refuses: its message and field in one line on standard error, exit status 1", arguments: [
        (["create", "bytes", "random", "--param", "length=abc"], "expects an unsigned 64-bit integer"),
        (["create", "bytes", "nonexistent"], "unknown behaviour 'nonexistent'"),
        (["create", "bytes", "random", "--listen", "nowhere"], "(field: listen)"),
    ])
    func refused(arguments: [String], message: String) throws {
        let session = try Session()
        let result = try session.ctl(arguments)
        #expect(result.status == 1, "\(result.output)")
        #expect(result.standardError.hasPrefix("cynic ctl: "), "\(result.output)")
        #expect(result.standardError.contains(message), "\(result.output)")
        #expect(result.standardError.split(separator: "\n").count == 1, "one line: \(result.standardError)")
        #expect(result.standardOutput.isEmpty)
        #expect(try session.succeeds(["services", "--json"]) == "[]\n", "nothing was created")
    }

    @Test("a name taken: the API's conflict, exit status 1")
    func conflict() throws {
        let session = try Session()
        _ = try session.succeeds(["create", "bytes", "random"])
        let result = try session.ctl(["create", "bytes", "random"])
        #expect(result.status == 1)
        #expect(result.standardError.hasPrefix("cynic ctl: ") && result.standardError.contains("bytes"), "\(result.output)")
    }

    @Test("no API at the address: one line naming it, with the hint, exit status 1; the default address too")
    func unreachable() throws {
        let port = RefusingPort()
        let result = try runProgram(Paths.cynic, ["ctl", "--api", "http://127.0.0.1:\(port.port)", "services"])
        #expect(result.status == 1)
        #expect(result.standardError == "cynic ctl: cannot reach the control API at http://127.0.0.1:\(port.port): connection refused"
            + " — is cynic running? start it with `cynic` or `cynic serve --api ADDR`\n")
        #expect(result.standardOutput.isEmpty)
        let fromEnvironment = try runProgram(Paths.cynic, ["ctl", "plugins"], environment: ["CYNIC_API": "127.0.0.1:\(port.port)"])
        #expect(fromEnvironment.status == 1)
        #expect(fromEnvironment.standardError.contains("at http://127.0.0.1:\(port.port): connection refused"), "\(fromEnvironment.output)")
    }

    @Test("pointed at something that is not the API (cynic's own misbehaving services): one line, exit status 1", arguments: [
        ("random", "does not answer HTTP"),
        // A close, or a reset when the request reached the closed socket.
        ("accept-close", "no complete answer from http://127.0.0.1:"),
        ("http-json", "an answer cynic's control API would not send: expected a list at the top"),
    ])
    func notTheAPI(behaviour: String, message: String) throws {
        let service = try CynicProcess(["serve", behaviour, "--port", "0"])
        let port = try #require(try service.waitForServices(1)[behaviour])
        let result = try runProgram(Paths.cynic, ["ctl", "--api", "127.0.0.1:\(port)", "services"])
        #expect(result.status == 1)
        #expect(result.standardError.hasPrefix("cynic ctl: ") && result.standardError.contains(message), "\(result.output)")
        #expect(result.standardError.split(separator: "\n").count == 1, "\(result.standardError)")
        #expect(result.standardOutput.isEmpty)
    }

    @Test("plugins lists behaviours and shapers with their files; rescan answers the same")
    func plugins() throws {
        let session = try Session()
        let listed = try session.succeeds(["plugins"])
        let lines = listed.split(separator: "\n")
        #expect(lines.first?.split(separator: " ") == ["NAME", "KIND", "VERSION", "CONNECTIONS", "FILE"], "\(listed)")
        let random = try #require(lines.first { $0.hasPrefix("random ") }, "\(listed)")
        #expect(random.contains(" behaviour ") && random.hasSuffix(Paths.shippedPlugin("random")), "\(random)")
        #expect(lines.contains { $0.hasPrefix("latency ") && $0.contains(" shaper ") }, "\(listed)")
        #expect(try session.succeeds(["rescan"]) == listed)
    }

    @Test("events: a line per connection; --json parses; --follow prints each as it ends")
    func events() throws {
        let session = try Session()
        _ = try session.succeeds(["create", "bytes", "random", "--param", "length=5"])
        let port = try session.port(of: "bytes")
        #expect(try SocketClient(port: port).receiveAll().bytes.count == 5)
        let lines = try session.succeeds(["events", "--service", "bytes", "--wait", "10"]).split(separator: "\n")
        #expect(lines.count == 1, "\(lines)")
        let fields = lines.first?.components(separatedBy: "  ") ?? []
        #expect(fields.count == 6, "\(fields)")
        #expect(fields.dropFirst().first == "bytes")
        #expect(fields.dropFirst(2).first?.hasPrefix("127.0.0.1:") == true)
        #expect(fields.last == "0 B in, 5 B out")

        let page = try #require(try JSONSerialization.jsonObject(with: Data(session.succeeds(["events", "--json"]).utf8)) as? [String: Any])
        let events = try #require(page["events"] as? [[String: Any]])
        #expect(events.count == 1)
        #expect(events.first?["service"] as? String == "bytes")

        let follow = try CynicProcess(["ctl", "--api", session.url, "events", "--follow", "--service", "bytes"])
        // The stream is open once a connection's record would reach it: retry until one does.
        let deadline = Date().addingTimeInterval(20)
        while !follow.standardOutput.contains("  bytes  "), Date() < deadline {
            _ = try SocketClient(port: port).receiveAll()
            usleep(200_000)
        }
        #expect(follow.standardOutput.contains("  bytes  127.0.0.1:"), "\(follow.standardOutput)\(follow.standardError)")
        #expect(follow.standardOutput.contains("0 B in, 5 B out\n"))
        #expect(follow.process.isRunning, "it follows until interrupted")
    }

    @Test("reset goes back to the configuration: what the API created is gone")
    func reset() throws {
        let session = try Session()
        _ = try session.succeeds(["create", "bytes", "random"])
        #expect(try session.succeeds(["reset"]) == "no services (add one with `cynic ctl create NAME BEHAVIOUR`)\n")
        #expect(try session.succeeds(["services", "--json"]) == "[]\n")
    }

    @Test("metrics prints Prometheus's text as the API answers it")
    func metrics() throws {
        let session = try Session()
        _ = try session.succeeds(["create", "bytes", "random", "--param", "length=5"])
        #expect(try SocketClient(port: try session.port(of: "bytes")).receiveAll().bytes.count == 5)
        let metrics = try session.succeeds(["metrics"])
        #expect(metrics.contains("cynic_connections_total"), "\(metrics)")
    }

    @Test("a token: refused without it, with its message; accepted from --token or $CYNIC_API_TOKEN")
    func token() throws {
        let session = try Session(["--api-token", "s3cret"])
        let refused = try session.ctl(["services"])
        #expect(refused.status == 1)
        #expect(refused.standardError.hasPrefix("cynic ctl: ") && refused.standardError.contains("token"), "\(refused.output)")
        #expect(try session.ctl(["services", "--token", "s3cret"]).status == 0)
        #expect(try session.ctl(["services"], environment: ["CYNIC_API_TOKEN": "s3cret"]).status == 0)
    }

    @Test("cynic ctl --help lists every command; each command's help has an example")
    func help() throws {
        let commands = ["services", "service", "create", "set", "enable", "disable", "delete", "shape", "unshape", "shapers",
                        "plugins", "rescan", "events", "reset", "metrics"]
        let help = try runProgram(Paths.cynic, ["ctl", "--help"])
        #expect(help.status == 0)
        for command in commands {
            #expect(help.standardOutput.contains("\n  \(command) "), "\(command) in: \(help.standardOutput)")
            let own = try runProgram(Paths.cynic, ["ctl", command, "--help"])
            #expect(own.status == 0)
            #expect(own.standardOutput.contains("Example: cynic ctl \(command)"), "\(command): \(own.standardOutput)")
            #expect(own.standardOutput.contains("--api <URL>"), "\(command)")
        }
        #expect(try runProgram(Paths.cynic, ["ctl", "set", "--help"]).standardOutput.contains("replaces"))
        #expect(try runProgram(Paths.cynic, ["--help"]).standardOutput.contains("\n  ctl "))
    }

    @Test("arguments cynic ctl refuses before any request, naming the flag", arguments: [
        (["create", "x", "random", "--param", "length"], "--param"),
        (["create", "x", "random", "--shape", "latency:probability=2"], "probability must be a number from 0 to 1, got '2'"),
        (["shape", "x", "latency:ms"], "expected key=value, got 'ms'"),
        (["set", "x"], "nothing to change"),
        (["set", "x", "--param", "a=1", "--clear-params"], "either --param or --clear-params"),
        (["events", "--follow", "--limit", "3"], "--follow"),
        (["--api", "https://127.0.0.1:1", "services"], "--api"),
    ])
    func badArguments(arguments: [String], message: String) throws {
        let unreachable = RefusingPort()
        let result = try runProgram(Paths.cynic, ["ctl"] + arguments, environment: ["CYNIC_API": "127.0.0.1:\(unreachable.port)"])
        #expect(result.status != 0)
        #expect(result.standardError.contains(message), "\(result.output)")
        #expect(!result.standardError.contains("cannot reach"), "refused before connecting: \(result.output)")
    }
}
