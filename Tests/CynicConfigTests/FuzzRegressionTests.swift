import CynicConfig
import CynicPlugins
import CynicTestSupport
import Foundation
import Testing

/// Inputs the configuration's fuzzer (scripts/fuzz.sh config) found to break an invariant, each
/// kept as it was found (also in fuzz/corpus/config).
@Suite("Configuration inputs found by fuzzing")
struct FuzzRegressionTests {
    @Test("a control character in the file is one line naming its line and column, not Yams' three")
    func controlCharacter() throws {
        let folder = TemporaryFolder()
        let path = folder.file("cynic.yaml")
        // fuzz/corpus/config/found-control-character: a NUL inside a value.
        let bytes = Array("services:\n  slow-api:\n    behaviour: http3".utf8) + [0] + Array("-slow\n    port: eighty\n".utf8)
        #expect(bytes == (try FuzzCorpus.bytes("config", "found-control-character")))
        FileManager.default.createFile(atPath: path, contents: Data(bytes))
        let error = try #require(throws: ConfigurationError.self) { try Configuration.read(file: path) }
        #expect(error.description == "\(path):3:21: not valid YAML: control characters are not allowed (U+0000)")
        #expect(!error.description.contains("\n"))
    }

    @Test("a value with line breaks, quoted in an error, is escaped: the error stays one line")
    func lineBreaksInAValue() throws {
        // fuzz/corpus/config/found-line-breaks-in-a-value: `names: [loc\r\r...alhost]`, a
        // flow scalar over 37 lines, refused as a certificate name.
        let path = FuzzCorpus.folder("config") + "/found-line-breaks-in-a-value"
        let error = try #require(throws: ConfigurationError.self) { try Configuration.read(file: path) }
        #expect(!error.description.unicodeScalars.contains { $0 == "\n" || $0 == "\r" })
        #expect(error.description.hasPrefix("\(path):6:7: services.api.tls.names[0]: expected a DNS name or an IP address, got 'loc\\n\\n"))
        #expect(error.description.hasSuffix("\\nalhost'"))
        // The message itself keeps the value as the file gave it.
        #expect(error.message.contains("loc\n\n"))
    }

    @Test("a parameter whose name YAML reads as syntax is quoted in the dump, which reads back the same")
    func parameterNameInTheDump() throws {
        // fuzz/corpus/config/found-anchor-in-a-parameter-name: `&interval_ms: 250`, an anchor
        // on a key, which the dump wrote back bare, as YAML it could not read.
        let configuration = try Configuration.read(file: FuzzCorpus.folder("config") + "/found-anchor-in-a-parameter-name")
        let dump = configuration.yaml(plugins: [:])
        let again = try Configuration.parse(yaml: dump, file: "dump.yaml")
        #expect(again.services.map { $0.parameters.mapValues(\.text) } == configuration.services.map { $0.parameters.mapValues(\.text) })
        // Plain names stay plain.
        #expect(dump.contains("      interval_ms: \"10\""))
        let odd = Configuration(services: [ServiceSpec(name: "s", behaviour: "b", address: .tcp(host: "127.0.0.1", port: 1),
                                                       parameters: ["a: b #c": ParameterInput("1", origin: "test")],
                                                       origin: "test")])
        #expect(try Configuration.parse(yaml: odd.yaml(plugins: [:]), file: "dump.yaml").services[0].parameters["a: b #c"]?.text == "1")
    }
}
