@testable import CynicControl
import CynicTestSupport
import Testing

/// Request bodies the control API's fuzzer (scripts/fuzz.sh control-body) found to break an
/// invariant, each kept as it was found (also in fuzz/corpus/control-body).
@Suite("Control API bodies found by fuzzing")
struct FuzzRegressionTests {
    @Test("an unnamed shaper whose type is no name (too long, a '/') is refused: it would be named by its type and never addressable",
          arguments: ["found-long-unnamed-shaper", #"{"name": "s", "behaviour": "reset", "shapers": [{"shaper": "a/b"}]}"#])
    func unnamedShaperType(input: String) throws {
        let bytes = input.hasPrefix("{") ? Array(input.utf8) : try FuzzCorpus.bytes("control-body", input)
        let body = try JSONValue.parse(bytes)
        let error = try #require(throws: APIError.self) { try ServiceInput.service(body) }
        #expect(error.status == .badRequest)
        #expect(error.field == "shapers[0].shaper")
        #expect(error.message.hasPrefix("shapers[0].shaper: "))
        // Alone, as POST /services/NAME/shapers takes it, the same.
        guard case .object(let fields) = body, case .array(let shapers)? = fields["shapers"] else { return }
        #expect(throws: APIError.self) { try ServiceRoutes.newShaper(shapers[0]) }
    }
}
