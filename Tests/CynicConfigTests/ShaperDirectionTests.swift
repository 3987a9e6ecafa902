import CynicConfig
import CynicPlugins
import Testing

/// A shaper's direction: downstream (toward the client, the default) or upstream (what the
/// service sends on its upstream connections), from the file, the command line and the dump.
@Suite("Shaper direction")
struct ShaperDirectionTests {
    @Test("`direction:` beside shaper, probability and params; downstream when not given")
    func parsesFromFile() throws {
        let configuration = try Configuration.parse(yaml: """
            services:
              proxy:
                behaviour: random
                port: 0
                shapers:
                  - shaper: latency
                    direction: upstream
                    params: {ms: 300}
                  - shaper: limit
                    probability: 0.5
                  - shaper: slicer
                    direction: downstream
            """, file: "cynic.yaml")
        let shapers = try #require(configuration.services.first).shapers
        #expect(shapers.map(\.direction) == [.upstream, .downstream, .downstream])
        #expect(shapers.map(\.shaper) == ["latency", "limit", "slicer"])
        #expect(shapers[0].parameters["ms"]?.text == "300")
    }

    @Test("a wrong direction names the file, the line, the key and what was expected", arguments: [
        ("up", "cynic.yaml:6:20: services.x.shapers[0].direction: expected downstream or upstream, got 'up'"),
        ("Upstream", "cynic.yaml:6:20: services.x.shapers[0].direction: expected downstream or upstream, got 'Upstream'"),
        ("[upstream]", "cynic.yaml:6:20: services.x.shapers[0].direction: expected downstream or upstream"),
    ])
    func fileErrors(value: String, message: String) {
        let yaml = "services:\n  x:\n    port: 1\n    shapers:\n      - shaper: latency\n        direction: \(value)\n"
        let error = #expect(throws: ConfigurationError.self) { try Configuration.parse(yaml: yaml, file: "cynic.yaml") }
        #expect(error?.description.hasPrefix(message) == true, "\(error.map { "\($0)" } ?? "no error")")
    }

    @Test("the command line's `direction=` is the shaper's own key, not a parameter")
    func commandLine() throws {
        let upstream = try ShaperSpec(commandLine: "latency:ms=200,direction=upstream,probability=0.5")
        #expect(upstream.direction == .upstream)
        #expect(upstream.probability == 0.5)
        #expect(upstream.parameters.keys.sorted() == ["ms"])
        #expect(try ShaperSpec(commandLine: "latency:ms=200").direction == .downstream)
        #expect(try ShaperSpec(commandLine: "latency:direction=downstream").parameters.isEmpty)
        let error = #expect(throws: ShaperSpecError.self) { try ShaperSpec(commandLine: "latency:direction=sideways") }
        #expect(error?.description == "--shape latency:direction=sideways: direction: expected downstream or upstream, got 'sideways'")
    }

    @Test("a dump writes each shaper's direction and documents the key; it reads back the same")
    func dumpRoundTrips() throws {
        let shapers = [ShaperSpec(shaper: "latency", direction: .upstream, parameters: ["ms": ParameterInput("5", origin: "t")]),
                       ShaperSpec(shaper: "limit", probability: 0.25)]
        let configuration = Configuration(services: [
            ServiceSpec(name: "x", behaviour: "random", address: .tcp(host: "127.0.0.1", port: 1), shapers: shapers, origin: "t"),
        ])
        let yaml = configuration.yaml(plugins: [:])
        #expect(yaml.contains("`direction` (downstream, the default"))
        #expect(yaml.contains("direction: upstream"))
        let parsed = try Configuration.parse(yaml: yaml, file: "dump.yaml")
        let read = try #require(parsed.services.first).shapers
        #expect(read.map(\.direction) == [.upstream, .downstream])
        #expect(read.map(\.probability) == [1, 0.25])
        #expect(read.map { $0.parameters.mapValues(\.text) } == shapers.map { $0.parameters.mapValues(\.text) })
    }
}
