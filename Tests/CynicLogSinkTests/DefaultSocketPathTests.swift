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
        let text = String(describing: error)
        #expect(text.contains(directory))
        #expect(text.contains("0777"))
        #expect(try mode(of: directory) == 0o777, "the directory is refused, not changed")
    }

    @Test func refusesASymbolicLink() throws {
        let runtime = try makeTemporaryDirectory()
        let elsewhere = try makeTemporaryDirectory()
        defer {
            removeDirectory(runtime)
            removeDirectory(elsewhere)
        }
        try #require(chmod(elsewhere, 0o700) == 0 && symlink(elsewhere, runtime + "/cynic") == 0)
        let error = #expect(throws: LogSinkError.self) {
            try LogSink.defaultSocketPath(environment: ["XDG_RUNTIME_DIR": runtime])
        }
        #expect(String(describing: error).contains("symbolic link"))
    }

    @Test func fallsBackToTmpWithoutARuntimeDirectory() throws {
        let path = try LogSink.defaultSocketPath(environment: ["XDG_RUNTIME_DIR": "/nonexistent/runtime"])
        #expect(path == "/tmp/cynic-\(getuid())/log.sock")
        #expect(try mode(of: "/tmp/cynic-\(getuid())") == 0o700)
    }
}
