import Foundation

/// The committed corpus of a fuzz target (fuzz/corpus/TARGET): the seeds, and what fuzz runs
/// found and kept. Tests send every file through the decoder the target fuzzes, so an input that
/// once broke a decoder keeps being tried in `swift test` (the fuzzers themselves are too slow
/// for it; scripts/fuzz.sh runs them).
public enum FuzzCorpus {
    public static func folder(_ target: String) -> String {
        Paths.repository + "/fuzz/corpus/" + target
    }

    /// The names of the target's corpus files, sorted.
    public static func names(_ target: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder(target))) ?? []).sorted()
    }

    /// One corpus file's bytes.
    public static func bytes(_ target: String, _ name: String) throws -> [UInt8] {
        Array(try Data(contentsOf: URL(fileURLWithPath: folder(target) + "/" + name)))
    }
}
