import CynicConfig
import CynicTestSupport
import Foundation
import Testing

@Suite("Reading the configuration file")
struct ConfigurationFileTests {
    @Test("a FIFO, a device or a folder is refused with its kind, at once")
    func notRegular() throws {
        let folder = TemporaryFolder()
        let fifo = folder.file("fifo.yaml")
        #expect(mkfifo(fifo, 0o600) == 0)
        let started = Date()
        for (path, kind) in [(fifo, "a FIFO"), ("/dev/zero", "a character device"), (folder.path, "a folder")] {
            let error = #expect(throws: ConfigurationError.self) { try Configuration.read(file: path) }
            #expect(error?.description == "\(path): not a regular file (\(kind))")
        }
        // A FIFO with no writer would block a blocking open for ever.
        #expect(Date().timeIntervalSince(started) < 5)
    }

    @Test("a file over 16 MiB is refused in one line; one just under it is read")
    func sizeLimit() throws {
        let folder = TemporaryFolder()
        let comment = Data(("#" + String(repeating: "x", count: 1023) + "\n").utf8)
        var big = Data("services: {}\n".utf8)
        while big.count < 16 << 20 - comment.count { big.append(comment) }
        let fits = folder.file("fits.yaml")
        try big.write(to: URL(fileURLWithPath: fits))
        #expect(try Configuration.read(file: fits).services.isEmpty)

        big.append(comment)
        let tooBig = folder.file("big.yaml")
        try big.write(to: URL(fileURLWithPath: tooBig))
        let error = #expect(throws: ConfigurationError.self) { try Configuration.read(file: tooBig) }
        #expect(error?.description == "\(tooBig): larger than 16 MiB, which no configuration needs; is it the right file?")
    }

    @Test("a missing or unreadable file says why, as the system does")
    func unreadable() throws {
        let error = #expect(throws: ConfigurationError.self) { try Configuration.read(file: "/nonexistent/c.yaml") }
        #expect(error?.description == "/nonexistent/c.yaml: cannot read the file: No such file or directory")
        let folder = TemporaryFolder()
        let bytes = folder.file("latin1.yaml")
        try Data([0x23, 0xe9, 0x0a]).write(to: URL(fileURLWithPath: bytes))
        #expect(throws: ConfigurationError.self) { try Configuration.read(file: bytes) }
    }
}
