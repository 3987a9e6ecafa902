import CynicTestSupport
import Foundation
import Testing

extension DefaultServicesTests {
    @Test("the README's C plugin, built with its cc line alone in an empty folder, serves on its default port")
    func readmeCPlugin() throws {
        let source = try #require(Readme.blocks("c").first)
        let commands = try #require(Readme.blocks("sh").first { $0.contains("-o hello.so hello.c") }?
            .split(separator: "\n").map(String.init))
        let ccLine = try #require(commands.first { $0.hasPrefix("cc ") })
        let folder = TemporaryFolder()
        try folder.write("hello.c", source)
        let build = try runProgram("sh", ["-c", "cd '\(folder.path)' && " + ccLine.replacingOccurrences(of: "path/to/cynic/include", with: "'\(Paths.include)'")])
        #expect(build.status == 0, "\(build.output)")
        let cynic = try CynicProcess(["--plugin-dir", folder.path, "--no-log-sink"])
        let ports = try cynic.waitForServices(DefaultServicesTests.ports.count + 1)
        #expect(ports["hello"] == 2100)
        let (bytes, end) = try SocketClient(port: 2100).receiveAll()
        #expect(String(decoding: bytes, as: UTF8.self) == "Hello, world! (100 ms)\nGoodbye.\n")
        #expect(end == .endOfFile)
    }
}

@Suite("README")
struct ReadmeTests {
    @Test("the README's Swift plugin package builds as written and serves")
    func readmeSwiftPlugin() throws {
        let blocks = Readme.blocks("swift")
        let manifest = try #require(blocks.first { $0.hasPrefix("// Package.swift") })
        let source = try #require(blocks.first { $0.hasPrefix("// Sources/HelloHTTP/") })
        let folder = TemporaryFolder()
        try FileManager.default.createDirectory(atPath: folder.file("Sources/HelloHTTP"), withIntermediateDirectories: true)
        // A package path dependency is known by its folder's name: a clone called `cynic`.
        try FileManager.default.createSymbolicLink(atPath: folder.file("cynic"), withDestinationPath: Paths.repository)
        // The manifest's first line must be the tools version: drop the file-name comment.
        try folder.write("Package.swift", manifest.split(separator: "\n", maxSplits: 1)[1]
            .replacingOccurrences(of: "path/to/cynic", with: folder.file("cynic")))
        try folder.write("Sources/HelloHTTP/HelloHTTP.swift", source)
        let build = try runProgram("swift", ["build", "--package-path", folder.path], timeout: 600)
        #expect(build.status == 0, "\(build.output)")
        let cynic = try CynicProcess(["serve", "hello-http", "--port", "0", "--plugin-dir", folder.path + "/.build/debug"])
        let port = try #require(try cynic.waitForServices(1)["hello-http"])
        let client = try SocketClient(port: port)
        client.send("GET /greet HTTP/1.1\r\nHost: x\r\n\r\n")
        let text = String(decoding: client.receiveAll().bytes, as: UTF8.self)
        #expect(text.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(text.hasSuffix("\r\n\r\nHello from Swift, GET /greet\n"))
    }
}

@Suite("README: proxy mode")
struct ReadmeProxyTests {
    @Test("the README's proxy configuration runs as written, in front of a real server, each proxy passing a request through")
    func proxyConfiguration() throws {
        let block = try #require(Readme.blocks("yaml").first { $0.contains("behaviour: proxy") })
        // The reader's servers, here: a real HTTP server stands in for both upstreams, and the
        // ports the README listens on are the kernel's picks. Nothing else of the block changes.
        let upstream = try PythonHTTPServer.start()
        try "through the proxy\n".write(toFile: upstream.folder + "/hello.txt", atomically: true, encoding: .utf8)
        let text = block
            .replacingOccurrences(of: "127.0.0.1:5432", with: "127.0.0.1:\(upstream.port)")
            .replacingOccurrences(of: "127.0.0.1:6379", with: "127.0.0.1:\(upstream.port)")
            .replacingOccurrences(of: "port: 6432", with: "port: 0")
            .replacingOccurrences(of: "port: 6380", with: "port: 0")
        let folder = TemporaryFolder()
        let file = try folder.write("cynic.yaml", text)
        let cynic = try CynicProcess(["-c", file, "--no-log-sink"])
        let ports = try cynic.waitForServices(2)
        for name in ["flaky-postgres", "slow-redis"] {
            let port = try #require(ports[name], "\(cynic.standardOutput)\(cynic.standardError)")
            let result = try runProgram("curl", ["-sS", "--max-time", "20", "http://127.0.0.1:\(port)/hello.txt"])
            #expect(result.status == 0, "\(name): \(result.output)")
            #expect(result.standardOutput == "through the proxy\n", "\(name)")
        }
    }
}

@Suite("README: TLS")
struct ReadmeTLSTests {
    @Test("the README's two TLS lines: a service over TLS with the expired profile, and curl trusting the CA, refused for the expiry",
          .enabled(if: programExists("curl")))
    func twoLines() throws {
        let block = try #require(Readme.blocks("sh").first { $0.contains("--tls ") })
        let lines = block.split(separator: "\n").map(String.init)
        try #require(lines.count == 2, "the block is the two lines: \(block)" as Comment)
        // A port of the kernel's choosing for the README's 8443, and a CA of the test's own; the
        // lines are otherwise run as written.
        let port = freePort()
        let ca = TemporaryFolder("cynic-readme-ca")
        let environment = ["CYNIC_CA_DIR": ca.path + "/ca"]
        let serve = lines[0].replacingOccurrences(of: "8443", with: "\(port)")
        try #require(serve.hasPrefix("cynic serve ") && serve.hasSuffix(" &"), "\(serve)")
        let arguments = serve.dropFirst("cynic ".count).dropLast(2).split(separator: " ").map(String.init)
        let cynic = try CynicProcess(arguments, environment: environment)
        _ = try cynic.waitForServices(1)
        try cynic.waitFor("local CA certificate: \(ca.path)/ca/ca.pem")
        let folder = (Paths.cynic as NSString).deletingLastPathComponent
        let client = lines[1].replacingOccurrences(of: "8443", with: "\(port)")
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        let result = try runProgram("/bin/sh", ["-c", client],
                                    environment: ["PATH": folder + ":" + path, "CYNIC_CA_DIR": ca.path + "/ca"], timeout: 30)
        #expect(result.status == 60, "\(result.output)")
        #expect(result.standardError.contains("SSL certificate problem: certificate has expired"), "\(result.output)")
    }
}
