import CynicConfig
import CynicControlClient
import CynicTestSupport
import Foundation
import Testing

/// What `cynic ctl` shows and sends, without a socket: the contract's own examples
/// (docs/control-api.md) read and shown, the `--api` forms, the bodies built from `--shape`.
@Suite("cynic ctl: text, addresses and request bodies")
struct CtlTextTests {
    /// The JSON examples of docs/control-api.md, each found by a field only it has.
    static func documentedExample(containing marker: String) throws -> [UInt8] {
        let text = try String(contentsOfFile: Paths.repository + "/docs/control-api.md", encoding: .utf8)
        let blocks = text.components(separatedBy: "```json\n").dropFirst().compactMap { $0.components(separatedBy: "```").first }
        let block = try #require(blocks.first { $0.contains(marker) }, "no example with \(marker) in docs/control-api.md")
        return Array(block.utf8)
    }

    @Test("the documented service, as the services table and the detail view show it")
    func service() throws {
        let service = try ControlAPI.decode(ControlAPI.Service.self, from: try Self.documentedExample(containing: "\"origin\""))
        #expect(ControlAPI.Service.table([service]) == [
            "NAME  BEHAVIOUR  LISTEN           ENABLED  OPEN/ACCEPTED  SHAPERS",
            "db    proxy      127.0.0.1:41234  yes      0/3            latency=latency downstream 1",
        ])
        #expect(service.detailLines == [
            "name         db",
            "behaviour    proxy",
            "listen       127.0.0.1:41234",
            "enabled      yes",
            "connections  0 open, 3 accepted",
            "parameters   upstream=127.0.0.1:5432",
            "shapers      latency=latency downstream 1 (ms=200)",
            "seed         none (random)",
            "origin       api",
        ])
        #expect(service.stateLine == "db enabled: listening on 127.0.0.1:41234")
        #expect(ControlAPI.Service.table([]) == ["no services (add one with `cynic ctl create NAME BEHAVIOUR`)"])
    }

    @Test("several shapers: comma-separated in the table, a line each in the detail view, a row each in `shapers`")
    func shapers() throws {
        let json = """
            {"name": "web", "behaviour": "http-json", "listen": "[::1]:8080", "enabled": false, "seed": 7,
             "parameters": {"status": 503, "close": true},
             "shapers": [{"name": "slow", "shaper": "latency", "direction": "upstream", "probability": 0.25, "parameters": {"ms": "50"}},
                         {"name": "cut", "shaper": "limit", "direction": "downstream", "probability": 1, "parameters": {}}]}
            """
        let service = try ControlAPI.decode(ControlAPI.Service.self, from: Array(json.utf8))
        #expect(ControlAPI.Service.table([service]).last == "web   http-json  [::1]:8080  no       -              slow=latency upstream 0.25, cut=limit downstream 1")
        #expect(service.detailLines.filter { $0.hasPrefix("parameters") || $0.hasPrefix("shapers") || $0.hasPrefix(" ") || $0.hasPrefix("seed") } == [
            "parameters  close=true, status=503",
            "shapers     slow=latency upstream 0.25 (ms=50)",
            "            cut=limit downstream 1",
            "seed        7",
        ])
        #expect(service.stateLine == "web disabled: [::1]:8080 refuses new connections")
        #expect(ControlAPI.Shaper.table(service.shapers ?? []) == [
            "NAME  SHAPER   DIRECTION   PROBABILITY  PARAMETERS",
            "slow  latency  upstream    0.25         ms=50",
            "cut   limit    downstream  1",
        ])
        #expect(ControlAPI.Shaper.table([]) == ["no shapers"])
    }

    @Test("the documented plugin and a refused file")
    func plugins() throws {
        let plugin = try Self.documentedExample(containing: "\"generations\"")
        let list = "{\"plugins\": [\(String(decoding: plugin, as: UTF8.self))], \"refused\": [{\"file\": \"/p/broken.so\", \"reason\": \"not a loadable shared object\"}]}"
        let decoded = try ControlAPI.decode(ControlAPI.PluginList.self, from: Array(list.utf8))
        #expect(decoded.lines == [
            "NAME     KIND    VERSION       CONNECTIONS  FILE",
            "latency  shaper  3f9a0c1b2d4e  0            /path/liblatency.so",
            "",
            "refused /p/broken.so: not a loadable shared object",
        ])
    }

    @Test("the documented event in one line; one with upstream bytes and a reason")
    func event() throws {
        let event = try ControlAPI.decode(ControlAPI.Event.self, from: try Self.documentedExample(containing: "\"duration_ms\""))
        #expect(event.line == "2026-12-01T12:00:00.123Z  db  127.0.0.1:51234  peer_closed by peer  12.5 ms  120 B in, 4096 B out"
            + "  upstream 4096 B in, 120 B out")
        let reset = """
            {"id": 3, "service": "web", "peer": "127.0.0.1:9", "client": {"bytes_in": 0, "bytes_out": 0}, "upstream": null,
             "started": "2026-12-01T12:00:01.000Z", "duration_ms": 200, "end": "reset", "ended_by": "shaper cut", "reason": "reset-after 200 ms"}
            """
        #expect(try ControlAPI.decode(ControlAPI.Event.self, from: Array(reset.utf8)).line
            == "2026-12-01T12:00:01.000Z  web  127.0.0.1:9  reset by shaper cut  200.0 ms  0 B in, 0 B out  (reset-after 200 ms)")
    }

    @Test("the API's error in one line, with its field; another server's page by its status")
    func errors() {
        let refused = ControlResponse(status: 400, body: Array("""
            {"error": "unknown behaviour 'rest' (available: empty, http-json)", "status": 400, "field": "behaviour"}
            """.utf8))
        #expect(throws: ControlClientError.self) { try refused.requireSuccess() }
        #expect(describe { try refused.requireSuccess() } == "unknown behaviour 'rest' (available: empty, http-json) (field: behaviour)")
        let notFound = ControlResponse(status: 404, body: Array(#"{"error": "service 'x' not found", "status": 404}"#.utf8))
        #expect(describe { try notFound.requireSuccess() } == "service 'x' not found")
        let page = ControlResponse(status: 502, body: Array("<html>bad gateway</html>\n<p>nginx</p>".utf8))
        #expect(describe { try page.requireSuccess() } == "HTTP 502 Bad Gateway: <html>bad gateway</html>")
        #expect(describe { _ = try ControlAPI.decode(ControlAPI.Service.self, from: Array(#"{"name": "x"}"#.utf8)) }
            == "an answer cynic's control API would not send: no 'behaviour' at the top")
        #expect(describe { _ = try ControlAPI.decode([ControlAPI.Service].self, from: Array(#"{"message": "hi"}"#.utf8)) }
            == "an answer cynic's control API would not send: expected a list at the top")
        #expect(describe { _ = try ControlAPI.decode(ControlAPI.Service.self, from: Array(#"{"name": "x", "behaviour": 1}"#.utf8)) }
            == "an answer cynic's control API would not send: expected a string at .behaviour")
        #expect(describe { _ = try ControlAPI.decode(ControlAPI.Service.self, from: Array("<html>".utf8)) }
            == "an answer cynic's control API would not send: not JSON")
        #expect(throws: Never.self) { try ControlResponse(status: 204, body: []).requireSuccess() }
    }

    private func describe(_ body: () throws -> Void) -> String {
        do {
            try body()
            return "no error"
        } catch {
            return "\(error)"
        }
    }

    @Test("--api forms", arguments: [
        ("http://127.0.0.1:8474", ControlEndpoint(host: "127.0.0.1", port: 8474)),
        ("127.0.0.1:9000", ControlEndpoint(host: "127.0.0.1", port: 9000)),
        ("HTTP://localhost", ControlEndpoint(host: "localhost", port: 80)),
        ("http://[::1]:8474/", ControlEndpoint(host: "::1", port: 8474)),
        ("http://cynic.test:8080/control/", ControlEndpoint(host: "cynic.test", port: 8080, basePath: "/control")),
    ])
    func endpoint(text: String, expected: ControlEndpoint) {
        #expect(ControlEndpoint(parsing: text) == expected)
    }

    @Test("--api refusals", arguments: ["https://127.0.0.1:8474", "localhost", "http://:8474", "http://h:0", "http://h:65536",
                                        "http://h:x", "http://[::1", "http://user@h:1", "ftp://h:1"])
    func badEndpoint(text: String) {
        #expect(ControlEndpoint(parsing: text) == nil)
    }

    @Test("an endpoint is shown as it is written")
    func endpointDescription() {
        #expect(ControlEndpoint.standard.description == "http://127.0.0.1:8474")
        #expect(ControlEndpoint(host: "::1", port: 1, basePath: "/x").description == "http://[::1]:1/x")
    }

    @Test("--shape's SPEC becomes the JSON the API takes; a name is sent only when chosen")
    func shaperBody() throws {
        let spec = try ShaperSpec(commandLine: "latency:ms=200,direction=upstream,probability=0.5")
        #expect(String(decoding: ControlAPI.encode(ControlAPI.NewShaper(spec)), as: UTF8.self)
            == #"{"direction":"upstream","parameters":{"ms":"200"},"probability":0.5,"shaper":"latency"}"#)
        let named = try ShaperSpec(commandLine: "limit:name=cut,bytes=10")
        #expect(String(decoding: ControlAPI.encode(ControlAPI.NewShaper(named)), as: UTF8.self)
            == #"{"direction":"downstream","name":"cut","parameters":{"bytes":"10"},"probability":1,"shaper":"limit"}"#)
    }

    @Test("a service's new fields, and only those given")
    func serviceBodies() {
        let service = ControlAPI.NewService(name: "db", behaviour: "proxy", listen: ":5433", parameters: ["upstream": "127.0.0.1:5432"])
        #expect(String(decoding: ControlAPI.encode(service), as: UTF8.self)
            == #"{"behaviour":"proxy","listen":":5433","name":"db","parameters":{"upstream":"127.0.0.1:5432"}}"#)
        #expect(String(decoding: ControlAPI.encode(ControlAPI.ServiceChange(enabled: false)), as: UTF8.self) == #"{"enabled":false}"#)
        #expect(String(decoding: ControlAPI.encode(ControlAPI.ServiceChange(parameters: [:])), as: UTF8.self) == #"{"parameters":{}}"#)
    }

    @Test("names and query values are escaped in the path")
    func paths() {
        #expect(ControlAPI.path("services", "db/1 b", "shapers") == "/services/db%2F1%20b/shapers")
        #expect(ControlAPI.path("/events", query: [("service", "a&b=c"), ("limit", nil), ("wait", "5")]) == "/events?service=a%26b%3Dc&wait=5")
        #expect(ControlAPI.path("/events", query: [("service", nil)]) == "/events")
    }

    @Test("a table pads every column but the last, and ends no line in spaces")
    func table() {
        let table = TextTable(headers: ["A", "LONGER", "C"], rows: [["xx", "", ""], ["y", "z", "last"]])
        #expect(table.lines == ["A   LONGER  C", "xx", "y   z       last"])
    }
}
