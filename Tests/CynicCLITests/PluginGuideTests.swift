import CynicPlugins
import CynicRuntime
import CynicTestSupport
import Foundation
import Testing

/// docs/plugins.md, checked as a reader would use it: every code block builds, loads or runs.
enum Guide {
    static let text = try! String(contentsOfFile: Paths.repository + "/docs/plugins.md", encoding: .utf8)

    /// Every fenced code block, with its language, in order.
    static let blocks: [(language: String, code: String)] = {
        let parts = text.components(separatedBy: "```")
        return stride(from: 1, to: parts.count, by: 2).map { index in
            let block = parts[index]
            let newline = block.firstIndex(of: "\n") ?? block.endIndex
            return (String(block[..<newline]), String(block[newline...].dropFirst()))
        }
    }()

    static func blocks(_ language: String) -> [String] {
        blocks.filter { $0.language == language }.map(\.code)
    }

    /// The C plugins, by the file name their first line gives (`/* tally.c — ... */`).
    static let cSources: [String: String] = {
        var sources: [String: String] = [:]
        for code in blocks("c") {
            let name = code.split(separator: " ", maxSplits: 2)[1]
            sources[String(name)] = code
        }
        return sources
    }()

    /// The C plugins, compiled once for the suite as the guide says (`cc -shared -fPIC -Wall
    /// -Werror -I include`), into one folder.
    static let folder = TemporaryFolder("cynic-guide")
    static let compiled: [String: String] = {
        var files: [String: String] = [:]
        for (file, source) in cSources {
            let name = String(file.dropLast(2))
            files[name] = try? compileCPlugin(source, named: name, into: folder.path)
        }
        return files
    }()

    static let catalog: PluginCatalog = {
        var catalog = PluginCatalog()
        for file in compiled.values.sorted() { catalog.add(file: file) }
        return catalog
    }()

    static func start(_ name: String, _ parameters: [String: String] = [:], shapers: [String] = []) async throws -> Service {
        try await TestServices.start(name, parameters: parameters, shapers: shapers, catalog: catalog)
    }

    /// The words of a shell command line: blanks separate, quotes group.
    static func words(_ line: String) -> [String] {
        var words: [String] = []
        var current = ""
        var quote: Character?
        var inWord = false
        for character in line {
            if let open = quote {
                if character == open { quote = nil } else { current.append(character) }
            } else if character == "'" || character == "\"" {
                quote = character
                inWord = true
            } else if character == " " {
                if inWord { words.append(current) }
                current = ""
                inWord = false
            } else {
                current.append(character)
                inWord = true
            }
        }
        if inWord { words.append(current) }
        return words
    }

    /// The command lines of every sh block, in order.
    static var commandLines: [String] {
        blocks("sh").flatMap { $0.split(separator: "\n").map(String.init) }
            .filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty && !$0.hasPrefix("#") }
    }
}

@Suite("The plugin guide, docs/plugins.md")
struct PluginGuideTests {
    @Test("every code block is C, Swift, sh or text, and every C block is a complete plugin that loads")
    func cBlocksLoad() throws {
        #expect(Set(Guide.blocks.map(\.language)).isSubset(of: ["c", "swift", "sh", "text"]),
                "\(Guide.blocks.map(\.language))")
        #expect(Guide.cSources.keys.sorted() == ["chunks.c", "deaf.c", "impatient.c", "stutter.c", "tally.c", "tripwire.c"])
        for (file, source) in Guide.cSources {
            let name = String(file.dropLast(2))
            // Rebuilt here for the compiler's message: the suite's build only keeps the result.
            let folder = TemporaryFolder("cynic-guide-c")
            let path = try compileCPlugin(source, named: name, into: folder.path)
            let plugin = try Plugin.load(file: path)
            #expect(plugin.name == name, "the file is named after the behaviour")
            #expect(plugin.abiVersion == 1)
            #expect(!plugin.summary.isEmpty)
            for parameter in plugin.parameters {
                #expect(!parameter.doc.isEmpty, "\(name).\(parameter.name) documented for `cynic plugins`")
            }
        }
        #expect(Guide.catalog.refusals.isEmpty, "\(Guide.catalog.refusals)")
        let plugins = Guide.catalog.plugins
        #expect(plugins["tally"]?.parameters.map(\.type.cName) == ["const char *", "uint64_t"])
        #expect(plugins["chunks"]?.speaksHTTP1 == true)
        #expect(plugins["impatient"]?.descriptor.conn_timer != nil)
        #expect(plugins["deaf"]?.listen?.receive_buffer == 4096)
        #expect(plugins["deaf"]?.listen?.never_accept == false)
        #expect(plugins["stutter"]?.isShaper == true)
        #expect(plugins["stutter"]?.shaper?.send != nil)
        #expect(plugins["stutter"]?.shaper?.close == nil)
        #expect(plugins["tripwire"]?.parameters.map(\.name) == ["upstream", "pattern"])
    }

    @Test("tripwire: passes bytes to a real echo server and back; the pattern, split across two sends, resets both sides")
    func tripwire() async throws {
        let echo = try UpstreamServer.tcp("echo")
        let service = try await Guide.start("tripwire", ["upstream": echo.address, "pattern": "DROP"])
        defer { Task { await service.stop() } }
        let (echoed, halfClosed, tripped) = try await offThePool { () -> (String, String, SocketClient.Received) in
            let client = try SocketClient(port: service.port)
            client.send("hello DR")
            let echoed = client.receive(through: "hello DR")
            client.send("OP and the rest")
            let tripped = client.receiveAll().end

            // A half-close passes through too: the echo server sees EOF and closes, and so do we.
            let polite = try SocketClient(port: service.port)
            polite.send("bye")
            polite.shutdownWrite()
            let (rest, end) = polite.receiveAll()
            return (echoed, String(decoding: rest, as: UTF8.self) + " " + end.description, tripped)
        }
        #expect(echoed == "hello DR")
        #expect(tripped == .failed(errno: ECONNRESET))
        #expect(halfClosed == "bye EOF")
    }

    @Test("tally: the banner, then the count once the client is done; a reset past the limit")
    func tally() async throws {
        let service = try await Guide.start("tally", ["banner": "hello", "limit": "10"])
        defer { Task { await service.stop() } }
        let (counted, reset) = try await offThePool { () -> (String, SocketClient.Received) in
            let client = try SocketClient(port: service.port)
            let banner = client.receive(through: "\n")
            client.send("12345")
            client.shutdownWrite()
            let (rest, end) = client.receiveAll()
            let counted = banner + String(decoding: rest, as: UTF8.self) + end.description

            let greedy = try SocketClient(port: service.port)
            _ = greedy.receive(through: "\n")
            greedy.send(String(repeating: "x", count: 20))
            return (counted, greedy.receive())
        }
        #expect(counted == "hello\nreceived 5 bytes\nEOF")
        #expect(reset == .failed(errno: ECONNRESET))
    }

    @Test("chunks: pipelined requests each get their chunked body, in order; Connection: close closes")
    func chunks() async throws {
        let service = try await Guide.start("chunks", ["chunks": "3", "interval_ms": "20"])
        defer { Task { await service.stop() } }
        let (text, end) = try await offThePool { () -> (String, SocketClient.Received) in
            let client = try SocketClient(port: service.port)
            client.send("GET /one HTTP/1.1\r\nHost: x\r\n\r\nGET /two HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            let (bytes, end) = client.receiveAll()
            return (String(decoding: bytes, as: UTF8.self), end)
        }
        let body = "8\r\nchunk 1\n\r\n8\r\nchunk 2\n\r\n8\r\nchunk 3\n\r\n0\r\n\r\n"
        let head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nConnection: "
        #expect(text == head + "keep-alive\r\n\r\n" + body + head + "close\r\n\r\n" + body)
        #expect(end == .endOfFile)
    }

    @Test("impatient: echoes; a silent client is told after idle_ms and closed")
    func impatient() async throws {
        let service = try await Guide.start("impatient", ["idle_ms": "300"])
        defer { Task { await service.stop() } }
        let (echo, rest, silence) = try await offThePool { () -> (String, String, Double) in
            let client = try SocketClient(port: service.port)
            let start = Date() // before the send: the idle clock cannot start before it arrives
            client.send("hi\n")
            let echo = client.receive(through: "hi\n")
            let (rest, end) = client.receiveAll()
            return (echo, String(decoding: rest, as: UTF8.self) + end.description, Date().timeIntervalSince(start))
        }
        #expect(echo == "hi\n")
        #expect(rest == "too slow\nEOF")
        #expect(silence >= 0.3, "\(silence) s")
    }

    @Test("stutter shapes tally's banner into pieces, ms apart")
    func stutter() async throws {
        let service = try await Guide.start("tally", ["banner": "0123456789"], shapers: ["stutter:piece=4,ms=50"])
        defer { Task { await service.stop() } }
        let (banner, elapsed) = try await offThePool { () -> (String, Double) in
            let start = Date() // before the connect: the banner starts at the server's accept
            let client = try SocketClient(port: service.port)
            let banner = client.receive(through: "\n")
            return (banner, Date().timeIntervalSince(start))
        }
        #expect(banner == "0123456789\n")
        #expect(elapsed >= 0.1, "4 + 4 + 2 bytes: two waits of 50 ms, got \(elapsed) s")
    }

    @Test("sh blocks: cc and mv run as written, cynic's commands and flags exist, the sample listing is what cynic prints")
    func shBlocks() throws {
        let sandbox = TemporaryFolder("cynic-guide-sh")
        try FileManager.default.createDirectory(atPath: sandbox.file("plugins"), withIntermediateDirectories: true)
        for (file, source) in Guide.cSources { try sandbox.write(file, source) }
        var helps: [String: String] = [:]
        func help(_ subcommand: String) throws -> String {
            if let text = helps[subcommand] { return text }
            let result = try runProgram(Paths.cynic, [subcommand, "--help"])
            #expect(result.status == 0, "cynic \(subcommand) --help: \(result.output)")
            helps[subcommand] = result.output
            return result.output
        }
        var ran: [String] = []
        for line in Guide.commandLines {
            let words = Guide.words(line)
            switch words.first {
            case "cc", "mv":
                let command = line.replacingOccurrences(of: "path/to/cynic/include", with: "'\(Paths.include)'")
                let result = try runProgram("sh", ["-c", "cd '\(sandbox.path)' && \(command)"])
                #expect(result.status == 0, "\(line)\n\(result.output)")
                ran.append(words[0])
            case "cynic":
                let subcommand = words.dropFirst().first { !$0.hasPrefix("-") } ?? "run"
                #expect(["run", "serve", "plugins"].contains(subcommand), "\(line)")
                let text = try help(subcommand)
                for flag in words where flag.hasPrefix("--") {
                    #expect(text.contains(flag), "\(line): cynic \(subcommand) has no \(flag)")
                }
                try run(words, in: sandbox)
                ran.append("cynic \(subcommand)")
            case "swift":
                #expect(words == ["swift", "build"], "\(line)")  // run by the Swift package test
            default:
                Issue.record("a command the guide's test does not know: \(line)")
            }
        }
        #expect(ran.filter { $0 == "cc" }.count == 3)
        #expect(ran.contains("mv"))
        // The install lines left the plugin in place, under its final name, loadable.
        #expect(try Plugin.load(file: sandbox.file("plugins/tally.so")).name == "tally")
        #expect(!FileManager.default.fileExists(atPath: sandbox.file("plugins/.tally.so.tmp")))

        // The sample listing, against the real thing.
        let sample = try #require(Guide.blocks("text").first { $0.hasPrefix("tally — ") })
        let listing = try runProgram(Paths.cynic, ["plugins", "--plugin-dir", sandbox.file("plugins")])
        let lines = listing.standardOutput.split(separator: "\n").map(String.init)
        for line in sample.split(separator: "\n").map(String.init) {
            if line.hasPrefix("    file: ") {
                #expect(lines.contains { $0.hasPrefix("    file: \(sandbox.file("plugins/tally.so"))") }, "\(listing.standardOutput)")
            } else {
                #expect(lines.contains(line), "'\(line)' not in:\n\(listing.standardOutput)")
            }
        }
    }

    /// Runs a `cynic serve` or `cynic plugins` line of the guide in `sandbox` (the folder its
    /// `cc` lines build in), when the plugin folder it names is there.
    private func run(_ words: [String], in sandbox: TemporaryFolder) throws {
        var arguments = Array(words.dropFirst())
        guard let dirFlag = arguments.firstIndex(of: "--plugin-dir"), dirFlag + 1 < arguments.count else { return }
        let folder = arguments[dirFlag + 1] == "." ? sandbox.path : sandbox.file(arguments[dirFlag + 1])
        guard FileManager.default.fileExists(atPath: folder) else { return }  // .build/debug: the Swift test's
        arguments[dirFlag + 1] = folder
        switch arguments.first {
        case "serve":
            let cynic = try CynicProcess(arguments)
            let ports = try cynic.waitForServices(1)
            let port = try #require(ports[arguments[1]])
            // The others' behaviour is checked by their own tests; the line must start a service.
            guard arguments[1] == "tally" else { return cynic.stop() }
            let client = try SocketClient(port: port)
            #expect(client.receive(through: "\n").hasSuffix("\n"), "\(words.joined(separator: " ")) greets")
            client.shutdownWrite()
            #expect(String(decoding: client.receiveAll().bytes, as: UTF8.self) == "received 0 bytes\n")
            if arguments.contains("--log-level") {
                try cynic.waitFor("connection opened", inError: true, timeout: 10)
            }
            cynic.stop()
        case "plugins":
            let result = try runProgram(Paths.cynic, arguments)
            #expect(result.status == 0)
            #expect(result.standardOutput.contains("tally — "), "\(result.output)")
        default:
            break
        }
    }

    @Test("the Swift plugin package builds as written and serves its countdown")
    func swiftPackage() throws {
        let blocks = Guide.blocks("swift")
        #expect(blocks.count == 2)
        let manifest = try #require(blocks.first { $0.hasPrefix("// Package.swift") })
        let source = try #require(blocks.first { $0.hasPrefix("// Sources/Countdown/Countdown.swift") })
        let folder = TemporaryFolder("cynic-guide-swift")
        try FileManager.default.createDirectory(atPath: folder.file("Sources/Countdown"), withIntermediateDirectories: true)
        // A package path dependency is known by its folder's name: a clone called `cynic`.
        try FileManager.default.createSymbolicLink(atPath: folder.file("cynic"), withDestinationPath: Paths.repository)
        // The manifest's first line must be the tools version: drop the file-name comment.
        try folder.write("Package.swift", manifest.split(separator: "\n", maxSplits: 1)[1]
            .replacingOccurrences(of: "path/to/cynic", with: folder.file("cynic")))
        try folder.write("Sources/Countdown/Countdown.swift", source)
        let build = try runProgram("swift", ["build", "--package-path", folder.path], timeout: 600)
        #expect(build.status == 0, "\(build.output)")
        #expect(!build.output.contains("warning:"), "\(build.output)")

        let line = try #require(Guide.commandLines.first { $0.hasPrefix("cynic serve countdown ") })
        let arguments = Guide.words(line).dropFirst().map { $0 == ".build/debug" ? folder.file(".build/debug") : $0 }
        let cynic = try CynicProcess(arguments)
        let port = try #require(try cynic.waitForServices(1)["countdown"])
        let start = Date() // before the connect: the countdown starts at the server's accept
        let (bytes, end) = try SocketClient(port: port).receiveAll()
        #expect(String(decoding: bytes, as: UTF8.self) == "5\n4\n3\n2\n1\nliftoff\n")
        #expect(end == .endOfFile)
        #expect(Date().timeIntervalSince(start) >= 0.95, "five waits of interval_ms=200")
    }
}

extension SocketClient {
    /// Receives until the bytes so far end with `expected` (or `timeout`); returns them all.
    func receive(through expected: String, timeout: Double = 10) -> String {
        var text = ""
        let deadline = Date().addingTimeInterval(timeout)
        while !text.hasSuffix(expected), deadline.timeIntervalSinceNow > 0 {
            guard case .bytes(let bytes) = receive(timeout: deadline.timeIntervalSinceNow) else { break }
            text += String(decoding: bytes, as: UTF8.self)
        }
        return text
    }
}
