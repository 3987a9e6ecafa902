import CynicTestSupport
import Foundation
import Testing

/// `cynic new-plugin`: what it writes builds as written and loads on the first try.
@Suite("cynic new-plugin")
struct NewPluginTests {
    /// The commands `new-plugin` printed after "next:".
    static func nextCommands(_ output: String) -> [String] {
        guard let next = output.range(of: "next:\n") else { return [] }
        return output[next.upperBound...].split(separator: "\n").map { String($0.drop { $0 == " " }) }
    }

    /// Runs a printed command as a user types it, with the `cynic` under test first on PATH, and a
    /// pkg-config that knows no cynic-plugin (an install elsewhere on the machine would be taken
    /// first: InstallTests tests that).
    static func run(_ command: String, in folder: String, timeout: Double = 60) throws -> ProgramResult {
        let path = Paths.buildFolder + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
        return try runProgram("sh", ["-c", "cd '\(folder)' && \(command)"],
                              environment: ["PATH": path, "PKG_CONFIG_PATH": "", "PKG_CONFIG_LIBDIR": "/nonexistent"], timeout: timeout)
    }

    /// Starts a printed `cynic serve ...` command, given as plain words.
    static func serve(_ command: String, in folder: String) throws -> CynicProcess {
        let words = command.split(separator: " ").map(String.init)
        try #require(words.first == "cynic" && !command.contains("'"), "\(command)")
        // Relative paths in it are relative to the folder it was printed for.
        let arguments = words.dropFirst().enumerated().map { index, word in
            index > 0 && words[index] == "--plugin-dir" && !word.hasPrefix("/") ? folder + "/" + word : word
        }
        return try CynicProcess(arguments)
    }

    @Test("a C plugin: its build.sh holds the cc line, builds as written, `cynic check` runs it, `cynic serve` serves the greeting")
    func cPlugin() throws {
        let work = TemporaryFolder()
        let generated = try Self.run("cynic new-plugin hello-c --lang c", in: work.path)
        #expect(generated.status == 0, "\(generated.output)")
        #expect(generated.standardOutput.hasPrefix("wrote hello-c/hello-c.c\nwrote hello-c/build.sh\n"), "\(generated.output)")
        let commands = Self.nextCommands(generated.standardOutput)
        #expect(commands == ["sh hello-c/build.sh", "cynic check hello-c/hello-c.so",
                             "cynic serve hello-c --port 0 --plugin-dir hello-c"])
        try #require(commands.count == 3)
        #expect(generated.standardOutput.contains("builds against <cynic/plugin.h> in \(Paths.include) "
            + "(in the checkout this cynic was built from; pkg-config knows no cynic-plugin)\n"), "\(generated.output)")
        let script = try String(contentsOfFile: work.file("hello-c/build.sh"), encoding: .utf8)
        #expect(script.contains("\ncc -shared -fPIC -Wall -Werror -I \(Paths.include) -o hello-c.so hello-c.c\n"), "\(script)")
        let source = try String(contentsOfFile: work.file("hello-c/hello-c.c"), encoding: .utf8)
        #expect(source.contains("#include <cynic/plugin.h>"))

        let build = try Self.run(commands[0], in: work.path)
        #expect(build.status == 0, "\(build.output)")
        let check = try Self.run(commands[1], in: work.path)
        #expect(check.status == 0, "\(check.output)")
        #expect(check.standardOutput.contains(#"cynic   send 20 bytes  "Hello from hello-c!\n""#), "\(check.output)")
        #expect(check.standardOutput.contains("ended: closed by cynic with FIN"), "\(check.output)")

        let cynic = try Self.serve(commands[2], in: work.path)
        let port = try #require(try cynic.waitForServices(1)["hello-c"])
        let (bytes, end) = try SocketClient(port: port).receiveAll()
        #expect(String(decoding: bytes, as: UTF8.self) == "Hello from hello-c!\n")
        #expect(end == .endOfFile)
    }

    @Test("a C HTTP plugin (--http, --dir) builds as written and answers 200 with its greeting parameter")
    func cHTTPPlugin() throws {
        let work = TemporaryFolder()
        let folder = work.file("plugins/web")
        let generated = try Self.run("cynic new-plugin hello-web --lang c --http --dir \(folder)", in: work.path)
        #expect(generated.status == 0, "\(generated.output)")
        let commands = Self.nextCommands(generated.standardOutput)
        try #require(commands.count == 3, "\(generated.output)")
        let build = try Self.run(commands[0], in: work.path)
        #expect(build.status == 0, "\(build.output)")

        let cynic = try Self.serve(commands[2] + " --param greeting=Hi", in: work.path)
        let port = try #require(try cynic.waitForServices(1)["hello-web"])
        let client = try SocketClient(port: port)
        client.send("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        let (bytes, end) = client.receiveAll()
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.hasPrefix("HTTP/1.1 200 OK\r\n"), "\(text)")
        #expect(text.hasSuffix("\r\nContent-Length: 3\r\nConnection: close\r\n\r\nHi\n"), "\(text)")
        #expect(end == .endOfFile)
    }

    @Test("a Swift plugin package builds as written with `swift build` and serves its greeting")
    func swiftPlugin() throws {
        let work = TemporaryFolder()
        let generated = try Self.run("cynic new-plugin hello-swift --lang swift --dir hs", in: work.path)
        #expect(generated.status == 0, "\(generated.output)")
        let commands = Self.nextCommands(generated.standardOutput)
        #expect(commands == ["swift build --package-path hs", "cynic check hs/.build/debug/libhello-swift.so",
                             "cynic serve hello-swift --port 0 --plugin-dir hs/.build/debug"])
        try #require(commands.count == 3)
        let manifest = try String(contentsOfFile: work.file("hs/Package.swift"), encoding: .utf8)
        #expect(manifest.hasPrefix("// swift-tools-version:6.0\n"))
        #expect(manifest.contains(#"let kit = Context.environment["CYNIC_PLUGIN_KIT"] ?? "\#(Paths.repository)""#), "\(manifest)")
        #expect(manifest.contains(#".package(name: "cynic", path: kit)"#), "\(manifest)")
        #expect(generated.standardOutput.contains("builds against CynicPluginKit in \(Paths.repository) (the checkout this cynic was built from)"),
                "\(generated.output)")
        #expect(FileManager.default.fileExists(atPath: work.file("hs/Sources/HelloSwiftPlugin/HelloSwiftPlugin.swift")))

        let build = try Self.run(commands[0], in: work.path, timeout: 600)
        #expect(build.status == 0, "\(build.output)")
        #expect(!build.output.contains("warning:"), "\(build.output)")
        let check = try Self.run(commands[1], in: work.path)
        #expect(check.status == 0, "\(check.output)")
        #expect(check.standardOutput.contains(#"send 24 bytes  "Hello from hello-swift!\n""#), "\(check.output)")

        let cynic = try Self.serve(commands[2], in: work.path)
        let port = try #require(try cynic.waitForServices(1)["hello-swift"])
        let (bytes, end) = try SocketClient(port: port).receiveAll()
        #expect(String(decoding: bytes, as: UTF8.self) == "Hello from hello-swift!\n")
        #expect(end == .endOfFile)
    }

    @Test("an existing file is never overwritten: one line, exit 1, nothing written")
    func refusesToOverwrite() throws {
        let work = TemporaryFolder()
        #expect(try Self.run("cynic new-plugin hello --lang c", in: work.path).status == 0)
        try "/* mine */\n".write(toFile: work.file("hello/hello.c"), atomically: false, encoding: .utf8)
        try FileManager.default.removeItem(atPath: work.file("hello/build.sh"))
        let again = try Self.run("cynic new-plugin hello --lang c", in: work.path)
        #expect(again.status == 1)
        #expect(again.standardError == "cynic: hello/hello.c already exists: not overwriting it (remove it, or give another --dir)\n")
        #expect(try String(contentsOfFile: work.file("hello/hello.c"), encoding: .utf8) == "/* mine */\n")
        // Checked before writing anything: the missing build.sh was not written either.
        #expect(!FileManager.default.fileExists(atPath: work.file("hello/build.sh")))
    }

    @Test("a name that is not a behaviour name is refused, nothing written", arguments: ["Hello", "my plugin", "a/b", "café"])
    func badName(name: String) throws {
        let work = TemporaryFolder()
        let result = try runProgram(Paths.cynic, ["new-plugin", name, "--lang", "c", "--dir", work.file("out")])
        #expect(result.status != 0)
        #expect(result.standardError.contains("'\(name)' is not a behaviour name: use lowercase letters, digits, '-' and '_'"),
                "\(result.output)")
        #expect(!FileManager.default.fileExists(atPath: work.file("out")))
    }
}
