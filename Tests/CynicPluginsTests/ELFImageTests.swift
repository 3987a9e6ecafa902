import CynicPlugins
import CynicTestSupport
import Foundation
import Testing

/// A plugin as a third-party C author builds it: `cc -shared -fPIC`, libc only. It calls libc, or
/// `--as-needed` (the default of some distributions) would leave libc out.
private func cPlugin(in folder: TemporaryFolder) throws -> String {
    let source = "#include <unistd.h>\n" + minimalPlugin(name: "elf") + "\nint elf_pid(void) { return (int)getpid(); }\n"
    return try compileCPlugin(source, named: "elf", into: folder.path)
}

/// The file's bytes with `edit` applied, written to a new file of the folder.
private func variant(of file: String, in folder: TemporaryFolder, named name: String,
                     _ edit: (inout [UInt8]) -> Void) throws -> String {
    var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: file)))
    edit(&bytes)
    let path = folder.file(name)
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    return path
}

@Suite("Reading ELF images")
struct ELFImageTests {
    @Test("a C plugin built with cc needs libc only and does not link the Swift runtime")
    func cPluginNeedsLibcOnly() throws {
        let folder = TemporaryFolder()
        let plugin = try cPlugin(in: folder)
        #expect(try ELFImage.neededLibraries(of: plugin) == ["libc.so.6"])
        #expect(try ELFImage.linksSwiftRuntime(plugin) == false)
    }

    @Test("a shipped Swift plugin links libswiftCore; the list matches readelf's")
    func swiftPluginLinksRuntime() throws {
        let plugin = Paths.shippedPlugin("http-json")
        try #require(FileManager.default.fileExists(atPath: plugin), "build the package's plugins first")
        let needed = try ELFImage.neededLibraries(of: plugin)
        #expect(needed.contains("libswiftCore.so"))
        #expect(try ELFImage.linksSwiftRuntime(plugin))

        if programExists("readelf") {
            let result = try runProgram("readelf", ["-d", "-W", plugin])
            let fromReadelf = result.standardOutput.split(separator: "\n")
                .filter { $0.contains("(NEEDED)") }
                .compactMap { line -> String? in
                    guard let open = line.lastIndex(of: "["), let close = line.lastIndex(of: "]") else { return nil }
                    return String(line[line.index(after: open)..<close])
                }
            #expect(needed == fromReadelf)
        }
    }

    @Test("a file that is not ELF, or is missing, throws naming it")
    func notELF() throws {
        let folder = TemporaryFolder()
        let text = try folder.write("text.so", String(repeating: "this is not a shared object\n", count: 10))
        #expect { try ELFImage.neededLibraries(of: text) } throws: { error in
            "\(error)" == "\(text): not an ELF file"
        }
        #expect { try ELFImage.linksSwiftRuntime(folder.file("missing.so")) } throws: { error in
            "\(error)".hasPrefix(folder.file("missing.so") + ": cannot open")
        }
    }

    @Test("a truncated ELF file throws")
    func truncated() throws {
        let folder = TemporaryFolder()
        let plugin = try cPlugin(in: folder)
        let head = try variant(of: plugin, in: folder, named: "head.so") { $0 = Array($0.prefix(100)) }
        #expect { try ELFImage.neededLibraries(of: head) } throws: { error in
            "\(error)".hasPrefix("\(head): truncated")
        }
    }

    @Test("offsets pointing anywhere throw rather than crash")
    func hostileOffsets() throws {
        let folder = TemporaryFolder()
        let plugin = try cPlugin(in: folder)
        // e_phoff at byte 32, little-endian: past the end, then at the very top of the range.
        for (index, offset) in [UInt64(1 << 40), UInt64.max - 8].enumerated() {
            let file = try variant(of: plugin, in: folder, named: "phoff\(index).so") { bytes in
                for byte in 0..<8 { bytes[32 + byte] = UInt8(truncatingIfNeeded: offset >> (8 * UInt64(byte))) }
            }
            #expect(throws: ELFImageError.self) { try ELFImage.neededLibraries(of: file) }
        }
    }

    @Test("every truncation and many corruptions of a real plugin throw or answer, never crash")
    func survivesDamage() throws {
        let folder = TemporaryFolder()
        let plugin = try cPlugin(in: folder)
        let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: plugin)))
        for length in stride(from: 0, to: original.count, by: 61) {
            let file = try variant(of: plugin, in: folder, named: "cut.so") { $0 = Array($0.prefix(length)) }
            _ = try? ELFImage.neededLibraries(of: file)
        }
        // A fixed sequence of pseudo-random byte changes, so a failure repeats.
        var state: UInt64 = 0x2545_f491_4f6c_dd1d
        func next() -> Int {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            return Int(truncatingIfNeeded: state >> 1)
        }
        for round in 0..<300 {
            // Half of the rounds in the headers, where the offsets are; half anywhere.
            let span = round.isMultiple(of: 2) ? min(original.count, 4096) : original.count
            let file = try variant(of: plugin, in: folder, named: "noise.so") { bytes in
                for _ in 0..<4 { bytes[next() % span] = UInt8(truncatingIfNeeded: next()) }
            }
            _ = try? ELFImage.neededLibraries(of: file)
        }
    }
}
