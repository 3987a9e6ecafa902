@testable import CynicControl
import Foundation
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

    @Test("a cynic shaper's parameter, shown as a toxic's attribute and sent back, is the same text (a number JSON reads as another is shown as a string)")
    func toxicAttributeReadsBack() throws {
        let body = try JSONValue.parse(try FuzzCorpus.bytes("control-body", "found-toxic-number-read-back-as-another"))
        let shaper = try ToxicInput(new: body).shaper(existing: nil, shaperNames: ["bandwidth"])
        #expect(shaper.parameters["bQby"]?.text == "1.00055555556e+19")
        let shown = try JSONEncoder().encode(ToxicJSON(shaper))
        let again = try ToxicInput(new: try JSONValue.parse(Array(shown))).shaper(existing: nil, shaperNames: ["bandwidth"])
        #expect(again.parameters.mapValues(\.text) == shaper.parameters.mapValues(\.text), "\(String(decoding: shown, as: UTF8.self))")
    }
}
