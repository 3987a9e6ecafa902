import CynicTestSupport
import Foundation
import Testing

/// Greets each connection it is given with "hi\n" and holds it: a client that reads the greeting
/// knows the service took it, one over the bound reads nothing.
private let holder = """
    #include <cynic/plugin.h>
    static const cynic_host *host;
    static void *create(const cynic_host *h) { host = h; return NULL; }
    static void *conn_open(void *instance, cynic_conn *conn) {
        (void)instance;
        host->send(conn, "hi\\n", 3);
        return NULL;
    }
    static const cynic_plugin plugin = {
        .abi_version = CYNIC_ABI_VERSION, .struct_size = sizeof(cynic_plugin), .name = "holder",
        .create = create, .conn_open = conn_open,
    };
    CYNIC_EXPORT const cynic_plugin *cynic_plugin_entry(void) { return &plugin; }
    """

/// A connection that the service took: it read the greeting and stays open.
private func held(_ port: Int) throws -> SocketClient {
    let client = try SocketClient(port: port)
    let greeting = client.receive(timeout: 10)
    #expect(greeting == .bytes(Array("hi\n".utf8)), "a connection under the bound got \(greeting)")
    return client
}

/// What curl says of a connection over the bound: nothing came back. The close can meet curl's
/// request before or after it is sent, so an empty reply (52) or a reset (56).
private func curlIsTurnedAway(_ port: Int) throws {
    let result = try runProgram("curl", ["-sS", "--max-time", "10", "http://127.0.0.1:\(port)/"])
    #expect(result.status == 52 || result.status == 56, "curl: \(result.status) \(result.output)")
    #expect(result.standardError.contains("Empty reply from server") || result.standardError.contains("Connection reset by peer"),
            "\(result.standardError)")
}

/// Python's socket over the bound: the connection opens, and the first read finds it closed.
private func pythonIsTurnedAway(_ port: Int) throws {
    let result = try runPython("""
        import socket, sys
        s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
        try:
            print("read", len(s.recv(100)))
        except ConnectionResetError:
            print("reset")
        """, [String(port)])
    #expect(result.standardOutput == "read 0\n" || result.standardOutput == "reset\n", "\(result.output)")
}

/// The lines of cynic's log that contain `text`, without the count said when a window of them ends.
private func lines(_ cynic: CynicProcess, containing text: String) -> [Substring] {
    cynic.standardError.split(separator: "\n").filter { $0.contains(text) && !$0.contains("more like it") }
}

private let connectionLimitLine = "connections open, the most it holds (max_connections, --max-connections)"

/// Python's http.client sending exactly the head it is told: "GET /" and one header, so the bytes
/// the limit counts (the target, each header's name and value) are known: 1 + 5 + `value`.
private func headStatus(_ port: Int, paddedTo value: Int) throws -> String {
    try runPython("""
        import http.client, sys
        connection = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=10)
        connection.putrequest("GET", "/", skip_host=True, skip_accept_encoding=True)
        connection.putheader("X-Pad", "a" * int(sys.argv[2]))
        connection.endheaders()
        print(connection.getresponse().status)
        """, [String(port), String(value)]).output
}

/// Python `requests` posting a body of `count` bytes (with its Content-Length); the status.
private func postStatus(_ url: String, bodyBytes count: Int, chunked: Bool = false) throws -> String {
    try runPython("""
        import requests, sys
        body = b"a" * int(sys.argv[2])
        data = iter([body[i:i + 4096] for i in range(0, len(body), 4096)]) if sys.argv[3] == "chunked" else body
        print(requests.post(sys.argv[1], data=data, timeout=10).status_code)
        """, [url, String(count), chunked ? "chunked" : "length"]).output
}

/// Each limit a user can set, met by real clients at the bound and just under it, with cynic's
/// default and with the flag; what the client sees is what a real server does, and cynic says so
/// in one line, not one per client.
@Suite("Limits a user can see and set")
struct LimitTests {
    @Test("--max-connections 3: three clients are taken, curl and Python over it are closed at once, one line says so, a place comes back")
    func connectionBound() throws {
        let folder = TemporaryFolder("cynic-limits")
        try compileCPlugin(holder, named: "holder", into: folder.path)
        let cynic = try CynicProcess(["serve", "holder", "--port", "0", "--plugin-dir", folder.path, "--max-connections", "3"])
        let port = try #require(try cynic.waitForServices(1)["holder"])
        // Up to the bound, each is taken: the third with two open, just under it.
        var clients = try (0..<3).map { _ in try held(port) }
        // Over it: accepted and closed at once, five times.
        for _ in 0..<3 { try curlIsTurnedAway(port) }
        for _ in 0..<2 { try pythonIsTurnedAway(port) }
        #expect(clients.allSatisfy { $0.receive(timeout: 0.2) == .timedOut }, "the three taken stay open")
        #expect(lines(cynic, containing: connectionLimitLine).count == 1, "\(cynic.standardError)")
        #expect(lines(cynic, containing: connectionLimitLine).first?.contains("3 connections open") == true)

        // One leaves: its place comes back once cynic has seen it close.
        clients.removeFirst()
        let deadline = Date().addingTimeInterval(10)
        var again: SocketClient.Received = .timedOut
        while Date() < deadline {
            let client = try SocketClient(port: port)
            again = client.receive(timeout: 5)
            if case .bytes = again {
                clients.append(client)
                break
            }
            usleep(50_000)
        }
        #expect(again == .bytes(Array("hi\n".utf8)), "after one left: \(again)")
        #expect(cynic.process.isRunning)
    }

    @Test("max_connections in the file and on the API bounds that service alone; the others take cynic's default")
    func perServiceBound() throws {
        let folder = TemporaryFolder("cynic-limits")
        try compileCPlugin(holder, named: "holder", into: folder.path)
        let configuration = try folder.write("cynic.yaml", """
            log_sink:
              enabled: false
            services:
              one:
                behaviour: holder
                port: 0
                max_connections: 1
              many:
                behaviour: holder
                port: 0
            """)
        let api = try CynicWithAPI(["--plugin-dir", folder.path], command: ["run", "-c", configuration])
        let ports = try api.cynic.waitForServices(2)
        let one = try #require(ports["one"]), many = try #require(ports["many"])

        var clients = [try held(one)]
        try curlIsTurnedAway(one)
        clients += try (0..<3).map { _ in try held(many) }
        #expect(try api.call("GET", "/services/one").object["max_connections"] as? Int == 1)
        #expect(try api.call("GET", "/services/many").object["max_connections"] is NSNull)

        // Through the API: `many` takes no more than the three it holds; open ones stay.
        let changed = try api.call("PATCH", "/services/many", #"{"max_connections": 3}"#)
        #expect(changed.status == 200, "\(changed)")
        #expect(changed.object["max_connections"] as? Int == 3)
        try pythonIsTurnedAway(many)
        #expect(clients.allSatisfy { $0.receive(timeout: 0.2) == .timedOut })
        // A service created with its own bound, and values the API refuses, naming the field.
        let created = try api.call("POST", "/services", #"{"name": "single", "behaviour": "holder", "max_connections": 1}"#)
        #expect(created.status == 201, "\(created)")
        let single = CynicWithAPI.port(of: created.object)
        clients.append(try held(single))
        try curlIsTurnedAway(single)
        for body in [#"{"max_connections": 0}"#, #"{"max_connections": "ten"}"#] {
            let refused = try api.call("PATCH", "/services/many", body)
            #expect(refused.status == 400, "\(refused)")
            #expect(refused.object["field"] as? String == "max_connections", "\(refused)")
        }
        #expect(lines(api.cynic, containing: connectionLimitLine).count == 3, "one line for each of the three services")
    }

    @Test("a head of exactly --max-header-bytes is answered; one byte more gets 431 (Python, curl), said in one line",
          arguments: [(nil, 32 << 10), ("1K", 1 << 10)])
    func headerBound(flag: String?, limit: Int) throws {
        let cynic = try CynicProcess(["serve", "http-json", "--port", "0"] + (flag.map { ["--max-header-bytes", $0] } ?? []))
        let port = try #require(try cynic.waitForServices(1)["http-json"])
        // "/" and "X-Pad" count too.
        #expect(try headStatus(port, paddedTo: limit - 6) == "200\n")
        #expect(try headStatus(port, paddedTo: limit - 5) == "431\n")
        let curl = try runProgram("curl", ["-sS", "--max-time", "10", "-o", "/dev/null", "-w", "%{http_code}",
                                           "-H", "X-Pad: " + String(repeating: "a", count: limit), "http://127.0.0.1:\(port)/"])
        #expect(curl.standardOutput == "431", "\(curl.output)")
        try cynic.waitFor("request line and headers over \(limit) bytes (--max-header-bytes)", inError: true)
        // One warning for the two clients refused; each connection's record says why besides.
        #expect(lines(cynic, containing: "closing connection: request line and headers over").count == 1, "\(cynic.standardError)")
    }

    @Test("a body of exactly --max-body-bytes is answered; one byte more gets 413, announced or chunked",
          arguments: [(nil, 1 << 20), ("1K", 1 << 10)])
    func bodyBound(flag: String?, limit: Int) throws {
        let cynic = try CynicProcess(["serve", "http-json", "--port", "0"] + (flag.map { ["--max-body-bytes", $0] } ?? []))
        let port = try #require(try cynic.waitForServices(1)["http-json"])
        let url = "http://127.0.0.1:\(port)/"
        #expect(try postStatus(url, bodyBytes: limit) == "200\n")
        #expect(try postStatus(url, bodyBytes: limit + 1) == "413\n")
        #expect(try postStatus(url, bodyBytes: limit, chunked: true) == "200\n")
        try cynic.waitFor("over \(limit) (--max-body-bytes)", inError: true)
    }

    @Test("a control API body of exactly --max-api-body-bytes is read; one byte more gets 413 with the API's JSON error",
          arguments: [(nil, 1 << 20), ("1K", 1 << 10)])
    func apiBodyBound(flag: String?, limit: Int) throws {
        let api = try CynicWithAPI(flag.map { ["--max-api-body-bytes", $0] } ?? [])
        let result = try runPython("""
            import http.client, json, sys
            host, port = sys.argv[1].rsplit("/", 1)[-1].split(":")
            limit = int(sys.argv[2])
            for name, size in (("fits", limit), ("over", limit + 1)):
                body = json.dumps({"name": name, "behaviour": "random"}).encode()
                body += b" " * (size - len(body))
                connection = http.client.HTTPConnection(host, int(port), timeout=10)
                connection.request("POST", "/services", body=body, headers={"Content-Type": "application/json"})
                answer = connection.getresponse()
                print(answer.status, json.dumps(json.loads(answer.read()), sort_keys=True) if answer.status == 413 else "")
            """, [api.url, String(limit)])
        #expect(result.standardOutput == """
            201 \n413 {"error": "request body over \(limit) bytes (--max-api-body-bytes)", "status": 413}

            """, "\(result.output)")
    }

    @Test("--help shows every limit with its default; a bad value names the flag")
    func helpAndMistakes() throws {
        let help = try runProgram(Paths.cynic, ["serve", "--help"])
        for (flag, shown) in [("--max-connections <N>", "(default: 16384)"), ("--max-header-bytes <BYTES>", "(default: 32K)"),
                              ("--max-body-bytes <BYTES>", "(default: 1M)"), ("--max-queued-bytes <BYTES>", "(default: 256M)"),
                              ("--max-api-body-bytes <BYTES>", "(default: 1M)")] {
            let line = help.standardOutput.split(separator: "\n").firstIndex { $0.contains(flag) }
            #expect(line != nil, "\(flag) in:\n\(help.standardOutput)")
            // The default is said at the end of the flag's help, which may wrap onto later lines.
            let text = line.map { help.standardOutput.split(separator: "\n")[$0...].prefix(4).joined(separator: " ") }?
                .split(separator: " ").joined(separator: " ") ?? ""
            #expect(text.contains(shown), "\(flag): \(text)")
        }
        #expect(help.standardOutput.contains("LIMITS:"))
        #expect(try runProgram(Paths.cynic, ["run", "--help"]).standardOutput.contains("--max-connections <N>"))
        let zero = try runProgram(Paths.cynic, ["serve", "random", "--port", "0", "--max-connections", "0"])
        #expect(zero.status != 0)
        #expect(zero.standardError.contains("--max-connections 0: expected 1 or more"), "\(zero.output)")
        let words = try runProgram(Paths.cynic, ["serve", "random", "--port", "0", "--max-header-bytes", "big"])
        #expect(words.status != 0)
        #expect(words.standardError.contains("--max-header-bytes"), "\(words.output)")
    }
}
