@testable import CynicControl
import CynicConfig
import CynicPlugins
import Testing

// toxiproxy's toxics onto cynic's shapers and back: names, units and directions, without a socket.

@Suite("Toxics as shapers")
struct ToxicMappingTests {
    @Test("each toxiproxy type becomes its shaper, in its units and direction", arguments: [
        ("latency", ["latency": 100, "jitter": 10], "latency", ["ms": "100", "jitter_ms": "10", "mode": "per-chunk"]),
        ("bandwidth", ["rate": 64], "bandwidth", ["bytes_per_second": "64000"]),
        ("slow_close", ["delay": 250], "slow-close", ["ms": "250"]),
        ("timeout", ["timeout": 0], "timeout", ["ms": "0"]),
        ("reset_peer", ["timeout": 30], "reset-after", ["ms": "30"]),
        ("slicer", ["average_size": 8, "size_variation": 2, "delay": 1500], "slicer", ["size": "8", "variation": "2", "delay_us": "1500"]),
        ("limit_data", ["bytes": 1024], "limit", ["bytes": "1024"]),
    ] as [(String, [String: UInt64], String, [String: String])])
    func mapsEachType(type: String, attributes: [String: UInt64], shaper: String, parameters: [String: String]) throws {
        let mapping = try #require(ToxicType.named(type))
        let spec = mapping.shaper(name: "\(type)_upstream", stream: .upstream, toxicity: 0.25, attributes: attributes)
        #expect(spec.shaper == shaper)
        #expect(spec.name == "\(type)_upstream")
        #expect(spec.direction == .upstream)
        #expect(spec.probability == 0.25)
        #expect(spec.parameters.mapValues(\.text) == parameters)
        // ...and reads back as the toxic it was.
        let toxic = ToxicJSON(spec)
        #expect(toxic.type == type)
        #expect(toxic.stream == "upstream")
        #expect(toxic.attributes == attributes.mapValues { .integer($0) })
    }

    @Test("a missing attribute is 0, as in toxiproxy, not the shaper's own default")
    func missingAttributesAreZero() throws {
        let spec = try #require(ToxicType.named("latency")).shaper(name: "l", stream: .downstream, toxicity: 1, attributes: ["latency": 5])
        #expect(spec.parameters["jitter_ms"]?.text == "0")
    }

    @Test("a shaper no toxiproxy type describes reads back as cynic.NAME with its own parameters")
    func otherShapers() {
        let firstByte = ToxicJSON(ShaperSpec(shaper: "latency", name: "lag", parameters: ["ms": ParameterInputs.text("200")]))
        #expect(firstByte.type == "cynic.latency", "a first-byte latency is not toxiproxy's per-chunk one")
        #expect(firstByte.attributes == ["ms": ToxicJSON.AttributeValue.integer(200)])
        let slicer = ToxicJSON(ShaperSpec(shaper: "slicer", name: "s", parameters: ["delay_ms": ParameterInputs.text("10")]))
        #expect(slicer.type == "cynic.slicer", "delay_ms says nothing toxiproxy's slicer says")
        let bytesOnly = ToxicJSON(ShaperSpec(shaper: "reset-after", name: "r", parameters: ["bytes": ParameterInputs.text("10")]))
        #expect(bytesOnly.type == "cynic.reset-after")
        #expect(bytesOnly.attributes == ["bytes": ToxicJSON.AttributeValue.integer(10)])
        let oddRate = ToxicJSON(ShaperSpec(shaper: "bandwidth", name: "b", parameters: ["bytes_per_second": ParameterInputs.text("1500")]))
        #expect(oddRate.type == "cynic.bandwidth", "1500 B/s is no whole number of KB/s")
        let plain = ToxicJSON(ShaperSpec(shaper: "reset-after", name: "r", parameters: ["ms": ParameterInputs.text("10")]))
        #expect(plain.type == "reset_peer" && plain.attributes == ["timeout": ToxicJSON.AttributeValue.integer(10)])
    }

    @Test("a parameter is shown as a JSON number only when sending that number back gives the same text", arguments: [
        ("200", ToxicJSON.AttributeValue.integer(200)), ("-5", .negative(-5)), ("0.5", .number(0.5)), ("true", .bool(true)),
        ("007", .text("007")), ("1e3", .text("1e3")), ("1.50", .text("1.50")), ("1.00055555556e+19", .text("1.00055555556e+19")),
        ("per-chunk", .text("per-chunk")),
    ])
    func attributeValues(text: String, shown: ToxicJSON.AttributeValue) {
        #expect(ToxicJSON.AttributeValue(parameterText: text) == shown)
    }

    @Test("a body's toxic: defaults as toxiproxy's, an update keeps what it does not name")
    func readsBodies() throws {
        let body = try JSONValue.parse(Array(#"{"type": "latency", "attributes": {"latency": 100}, "colour": "red"}"#.utf8))
        let toxic = try ToxicInput(new: body)
        #expect(toxic.name == "latency_downstream" && toxic.stream == .downstream && toxic.toxicity == 1)
        let made = try toxic.shaper(existing: nil, shaperNames: [])
        #expect(made.parameters.mapValues(\.text) == ["ms": "100", "jitter_ms": "0", "mode": "per-chunk"])
        let change = try JSONValue.parse(Array(#"{"attributes": {"jitter": 5}, "type": "timeout", "stream": "upstream"}"#.utf8))
        let changed = try ToxicInput(update: change, of: made).shaper(existing: made, shaperNames: [])
        #expect(changed.shaper == "latency" && changed.direction == .downstream && changed.name == "latency_downstream")
        #expect(changed.parameters.mapValues(\.text) == ["ms": "100", "jitter_ms": "5", "mode": "per-chunk"])
    }

    @Test("an attribute too large for cynic's unit is refused, not wrapped to a small one",
          arguments: [("bandwidth", "rate", UInt64.max / 1000 + 1), ("bandwidth", "rate", UInt64.max)])
    func refusesAttributesThatOverflow(type: String, attribute: String, value: UInt64) throws {
        let body = JSONValue.object(["type": .string(type), "attributes": .object([attribute: .unsigned(value)])])
        let error = try #require(throws: APIError.self) { try ToxicInput(new: body).shaper(existing: nil, shaperNames: []) }
        #expect(error.status == .badRequest)
        #expect(error.field == "attributes.\(attribute)")
        #expect(error.message == "bad request body: attributes.\(attribute): at most \(UInt64.max / 1000), got \(value)")
        // The largest that fits is taken, in bytes per second.
        let largest = JSONValue.object(["type": .string(type), "attributes": .object([attribute: .unsigned(UInt64.max / 1000)])])
        let shaper = try ToxicInput(new: largest).shaper(existing: nil, shaperNames: [])
        #expect(shaper.parameters["bytes_per_second"]?.text == String(UInt64.max / 1000 * 1000))
    }
}

enum ParameterInputs {
    static func text(_ value: String) -> ParameterInput { ParameterInput(value, origin: "test") }
}
