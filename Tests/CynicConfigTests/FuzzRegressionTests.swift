import CynicConfig
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
}
