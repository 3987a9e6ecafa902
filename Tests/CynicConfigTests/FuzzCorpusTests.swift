import CynicConfig
import CynicTestSupport
import Testing

/// Every committed input of the configuration's fuzz target (fuzz/corpus/config), read as
/// `cynic -c FILE` reads it.
@Suite("The configuration's fuzz corpus")
struct FuzzCorpusTests {
    @Test("each config input is read, or refused in one line naming the file; one read, dumped, reads back")
    func config() throws {
        let names = FuzzCorpus.names("config")
        #expect(names.count >= 5)
        var read = 0
        for name in names {
            let path = FuzzCorpus.folder("config") + "/" + name
            do {
                let configuration = try Configuration.read(file: path)
                read += 1
                let again = try Configuration.parse(yaml: configuration.yaml(plugins: [:]), file: "dump.yaml")
                #expect(again.services.map(\.name) == configuration.services.map(\.name), "\(name)")
                #expect(again.services.map(\.address) == configuration.services.map(\.address), "\(name)")
            } catch {
                #expect(error.description.hasPrefix(path) && !error.message.isEmpty, "\(name): \(error)")
                #expect(!error.description.unicodeScalars.contains { $0 == "\n" || $0 == "\r" }, "\(name): \(error)")
            }
        }
        // The README's examples and the tests' files are valid configurations.
        #expect(read >= 4)
    }
}
