import Foundation
import Testing

@testable import CynicLogSink

@Suite struct DefaultSocketPathTests {
    func mode(of path: String) throws -> Int {
        var info = stat()
        try #require(lstat(path, &info) == 0)
        return Int(info.st_mode & 0o7777)
    }

    @Test func createsAPrivateDirectoryInTheRuntimeDirectory() throws {
        let runtime = try makeTemporaryDirectory()
        defer { removeDirectory(runtime) }
        let path = try LogSink.defaultSocketPath(environment: ["XDG_RUNTIME_DIR": runtime])
        #expect(path == runtime + "/cynic/log.sock")
        #expect(try mode(of: runtime + "/cynic") == 0o700)
        // A second call accepts the directory it made.
        #expect(try LogSink.defaultSocketPath(environment: ["XDG_RUNTIME_DIR": runtime]) == path)
    }

    @Test func refusesADirectoryOthersCanUse() throws {
        let runtime = try makeTemporaryDirectory()
        defer { removeDirectory(runtime) }
        let directory = runtime + "/cynic"
        try #require(mkdir(directory, 0o777) == 0 && chmod(directory, 0o777) == 0)

        let error = #expect(throws: LogSinkError.self) {
            try LogSink.defaultSocketPath(environment: ["XDG_RUNTIME_DIR": runtime])
        }
        // The policy is PrivateFolder's (tested there); the sink's error says what it was for.
        let text = try #require(error).description
        #expect(text.hasPrefix("cannot use \(directory) for the log socket: its mode 0777"))
        #expect(try mode(of: directory) == 0o777, "the directory is refused, not changed")
    }

    @Test func fallsBackToTmpWithoutARuntimeDirectory() throws {
        let path = try LogSink.defaultSocketPath(environment: ["XDG_RUNTIME_DIR": "/nonexistent/runtime"])
        #expect(path == "/tmp/cynic-\(geteuid())/log.sock")
        #expect(try mode(of: "/tmp/cynic-\(geteuid())") == 0o700)
    }
}
