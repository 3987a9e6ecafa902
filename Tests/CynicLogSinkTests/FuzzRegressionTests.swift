import CynicTestSupport
import Testing

@testable import CynicLogSink

/// Inputs the log sink's fuzzers (scripts/fuzz.sh log-*) found to break an invariant, each kept
/// as it was found (also in fuzz/corpus/).
@Suite("Log sink inputs found by fuzzing")
struct FuzzRegressionTests {
    private final class Weak {
        weak var object: AnyObject?
        init(_ object: AnyObject) { self.object = object }
    }

    /// `d = {}; d['self'] = d; pickle.dumps(d, 2)`.
    static let selfHoldingDict: [UInt8] = [0x80, 0x02, 0x7d, 0x71, 0x00, 0x58, 0x04, 0x00, 0x00, 0x00]
        + Array("self".utf8) + [0x71, 0x01, 0x68, 0x00, 0x73, 0x2e]

    @Test("a pickled container that holds itself is refused, and its boxes are freed once emptied (they leaked)",
          arguments: ["self-holding dict", "found-self-reference-leak"])
    func selfReference(input: String) throws {
        let bytes = input == "self-holding dict" ? Self.selfHoldingDict : try FuzzCorpus.bytes("log-pickle", input)
        var watched: [Weak] = []
        do {
            let boxes = PickleBoxes()
            #expect(throws: PickleError.self) { try PickleDecoder.decode(bytes, limits: .init(), boxes: boxes) }
            watched = boxes.objects.map(Weak.init)
            // The cycle is there: nothing but emptying frees these boxes.
            #expect(watched.contains { $0.object != nil })
            boxes.empty()
        }
        #expect(watched.allSatisfy { $0.object == nil })
        // And the decoder the sink calls refuses it with the reason.
        #expect(throws: PickleError.self) { try PickleDecoder.decode(bytes) }
    }
}
