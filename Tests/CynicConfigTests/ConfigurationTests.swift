import CynicConfig
import CynicPlugins
import CynicTestSupport
import Testing

@Suite("Configuration file")
struct ConfigurationTests {
    @Test("services, defaults, unix sockets, parameters with the line they came from")
    func parses() throws {
        let configuration = try Configuration.parse(yaml: """
            log_sink:
              path: /tmp/x/log.sock
            services:
              slow-api:
                behaviour: http-slow
                host: 0.0.0.0
                port: 8003
                params:
                  interval_ms: 250
                  content_type: "text/plain"
              reset:
                port: 2020
              local:
                behaviour: random
                unix: /tmp/random.sock
                params:
                  length: ~
            """, file: "cynic.yaml")
        #expect(configuration.logSink == .path("/tmp/x/log.sock"))
        #expect(configuration.services == [
            ServiceSpec(name: "slow-api", behaviour: "http-slow", address: .tcp(host: "0.0.0.0", port: 8003),
                        parameters: ["interval_ms": ParameterInput("250", origin: "cynic.yaml:9"),
                                     "content_type": ParameterInput("text/plain", origin: "cynic.yaml:10")],
                        origin: "cynic.yaml:5"),
            ServiceSpec(name: "reset", behaviour: "reset", address: .tcp(host: "127.0.0.1", port: 2020), origin: "cynic.yaml:12"),
            ServiceSpec(name: "local", behaviour: "random", address: .unix(path: "/tmp/random.sock"), origin: "cynic.yaml:14"),
        ])
    }

    @Test("max_connections bounds one service; without it the service takes cynic's --max-connections; a dump keeps it")
    func maxConnections() throws {
        let configuration = try Configuration.parse(yaml: """
            services:
              one: {behaviour: reset, port: 1, max_connections: 2}
              other: {behaviour: reset, port: 2}
            """, file: "f.yaml")
        #expect(configuration.services.map(\.maxConnections) == [2, nil])
        let again = try Configuration.parse(yaml: configuration.yaml(plugins: [:]), file: "dump.yaml")
        #expect(again.services.map(\.maxConnections) == [2, nil])
    }

    @Test("log_sink can be switched off; with no log_sink the default path is used")
    func logSink() throws {
        #expect(try Configuration.parse(yaml: "log_sink:\n  enabled: false\nservices: {}\n", file: "f").logSink == .disabled)
        #expect(try Configuration.parse(yaml: "services: {}\n", file: "f").logSink == .defaultPath)
    }

    @Test("each mistake is one line naming the file, the line, the key and what was expected", arguments: [
        ("services:\n  a:\n    port: 99999\n", "f.yaml:3:11: services.a.port: expected a port number (0-65535), got '99999'"),
        ("services:\n  a:\n    prot: 80\n", "f.yaml:3:5: services.a: unknown key 'prot' (expected one of: behaviour, host, port, unix, params, shapers, seed, tls, max_connections)"),
        ("services:\n  a:\n    port: 1\n    max_connections: 0\n", "f.yaml:4:22: services.a.max_connections: expected a number of connections, 1 or more, got '0'"),
        ("services:\n  a:\n    port: 1\n    max_connections: many\n", "f.yaml:4:22: services.a.max_connections: expected a number of connections, 1 or more, got 'many'"),
        ("services:\n  a:\n    port: 80\n    unix: /x\n", "f.yaml:3:5: services.a: give either `port` or `unix`, not both"),
        ("services:\n  a:\n    behaviour: reset\n", "f.yaml:3:5: services.a: needs `port` (TCP) or `unix` (a socket path)"),
        ("services:\n  a:\n    port: 1\n    params:\n      length: [1, 2]\n", "f.yaml:5:15: services.a.params.length: expected a single value"),
        ("services:\n  a: {port: 1}\n  a: {port: 2}\n", "f.yaml:2:3: key 'a' given twice in one mapping"),
        ("servics: {}\n", "f.yaml:1:1: the top level: unknown key 'servics' (expected one of: services, log_sink)"),
        ("services:\n  a:\n    port: 80\n   bad indent\n", "f.yaml:4:"),
        ("", "f.yaml: the file is empty"),
        ("- just\n- a list\n", "f.yaml:1:1: the top level: expected a mapping"),
    ])
    func errors(yaml: String, message: String) {
        let error = #expect(throws: ConfigurationError.self) { try Configuration.parse(yaml: yaml, file: "f.yaml") }
        #expect(error?.description.hasPrefix(message) == true, "\(error.map { "\($0)" } ?? "no error")")
        #expect(error?.description.contains("\n") == false)
    }

    @Test("a dump of the shipped defaults reads back as the same services")
    func dumpRoundTrips() throws {
        let plugins = TestServices.shipped.plugins
        #expect(plugins.count == 34, "27 behaviours and 7 shapers")
        let defaults = Configuration.defaults(for: Array(plugins.values))
        let parsed = try Configuration.parse(yaml: defaults.yaml(plugins: plugins), file: "dump.yaml")
        #expect(parsed.services.map(\.name) == defaults.services.map(\.name))
        #expect(parsed.services.map(\.address) == defaults.services.map(\.address))
        #expect(parsed.services.allSatisfy { $0.parameters.isEmpty })
    }

    @Test("quoting survives any text")
    func quoting() throws {
        let nasty = "a \"quoted\" \\ value: with # and \n newline\ttab"
        let configuration = Configuration(services: [ServiceSpec(name: "x", behaviour: "http-json", address: .tcp(host: "127.0.0.1", port: 1),
                                                                 parameters: ["content_type": ParameterInput(nasty, origin: "t")], origin: "t")])
        let parsed = try Configuration.parse(yaml: configuration.yaml(plugins: [:]), file: "q.yaml")
        #expect(parsed.services.first?.parameters["content_type"]?.text == nasty)
    }
}
