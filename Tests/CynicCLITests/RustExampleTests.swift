import CynicTestSupport
import Foundation
import Testing

/// plugins/examples/rust, built and served as its README says.
@Suite("The Rust example plugin")
struct RustExampleTests {
    static let example = Paths.repository + "/plugins/examples/rust"

    /// The command lines of the README's sh blocks.
    static var readmeCommands: [String] {
        let text = (try? String(contentsOfFile: example + "/README.md", encoding: .utf8)) ?? ""
        let parts = text.components(separatedBy: "```")
        return stride(from: 1, to: parts.count, by: 2).flatMap { index -> [String] in
            guard parts[index].hasPrefix("sh\n") else { return [] }
            return parts[index].dropFirst(3).split(separator: "\n").map(String.init)
        }
    }

    @Test("hello.rs builds with the README's one rustc line and `cynic serve` sends its greeting",
          .enabled(if: programExists("rustc")))
    func helloRust() throws {
        let commands = Self.readmeCommands
        let build = try #require(commands.first { $0.hasPrefix("rustc ") })
        #expect(build == "rustc --crate-type cdylib -O -o libhello_rust.so hello.rs")
        let serve = try #require(commands.first { $0.hasPrefix("cynic serve ") })
        #expect(serve == "cynic serve hello-rust --port 0 --plugin-dir . --param greeting='Hello, tester!'")

        let folder = TemporaryFolder("cynic-rust")
        try FileManager.default.copyItem(atPath: Self.example + "/hello.rs", toPath: folder.file("hello.rs"))
        let compiled = try runProgram("sh", ["-c", "cd '\(folder.path)' && \(build)"], timeout: 300)
        #expect(compiled.status == 0, "\(compiled.output)")
        #expect(!compiled.output.contains("warning"), "\(compiled.output)")

        // The README's serve line, with `.` being the folder the .so was built in.
        let cynic = try CynicProcess(["serve", "hello-rust", "--port", "0", "--plugin-dir", folder.path,
                                      "--param", "greeting=Hello, tester!"])
        let port = try #require(try cynic.waitForServices(1)["hello-rust"])
        let (bytes, end) = try SocketClient(port: port).receiveAll()
        #expect(String(decoding: bytes, as: UTF8.self) == "Hello, tester!\n")
        #expect(end == .endOfFile)
        cynic.stop()

        // Its parameter is listed with its C type and default; a value it refuses stops the service.
        let listing = try runProgram(Paths.cynic, ["plugins", "--plugin-dir", folder.path])
        #expect(listing.standardOutput.contains("hello-rust — Sends a greeting, then closes (a plugin written in Rust)."), "\(listing.output)")
        #expect(listing.standardOutput.contains("ABI 1, raw TCP behaviour, default port 2102, unloaded when unused"), "\(listing.output)")
        #expect(listing.standardOutput.contains("param greeting: const char *, default Hello from Rust! — The line sent to every client before closing."))
        let refused = try runProgram(Paths.cynic, ["serve", "hello-rust", "--port", "0", "--plugin-dir", folder.path, "--param", "greeting="])
        #expect(refused.status != 0)
        #expect(refused.standardError.contains("behaviour 'hello-rust' refused its parameters: greeting must not be empty"), "\(refused.output)")
    }
}
