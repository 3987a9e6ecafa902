import CynicTestSupport
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

@testable import CynicLogSink

/// A fresh private directory under /tmp, short enough for a Unix socket path (108 bytes at most).
func makeTemporaryDirectory() throws -> String {
    var template = Array("/tmp/cynic-logsink-test-XXXXXX".utf8CString)
    guard let made = mkdtemp(&template) else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
    return String(cString: made)
}

func removeDirectory(_ path: String) {
    try? FileManager.default.removeItem(atPath: path)
}

/// Records handed to the sink's handler.
final class RecordCollector: Sendable {
    private let box = NIOLockedValueBox<[LogRecord]>([])

    var records: [LogRecord] { box.withLockedValue { $0 } }

    var handler: @Sendable (LogRecord) -> Void {
        { [box] record in box.withLockedValue { $0.append(record) } }
    }
}

/// A swift-log handler that keeps warnings and worse, so tests can check what the sink reported.
struct CapturingLogHandler: LogHandler {
    let messages: NIOLockedValueBox<[String]>
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        guard event.level >= .warning else { return }
        messages.withLockedValue { $0.append(event.message.description) }
    }
}

/// A running sink on its own socket in its own directory, and what it received.
struct SinkFixture {
    let directory: String
    let path: String
    let sink: LogSink
    let collector: RecordCollector
    let warnings: NIOLockedValueBox<[String]>
    let group: MultiThreadedEventLoopGroup

    var records: [LogRecord] { collector.records }
    var warningMessages: [String] { warnings.withLockedValue { $0 } }

    /// Runs `body` with a started sink; stops it, and cleans up, however `body` ends.
    static func with(maxRecordBytes: Int = LogSink.defaultMaxRecordBytes,
                     _ body: (SinkFixture) async throws -> Void) async throws {
        let directory = try makeTemporaryDirectory()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let warnings = NIOLockedValueBox<[String]>([])
        let collector = RecordCollector()
        let logger = Logger(label: "cynic.logsink.test") { _ in CapturingLogHandler(messages: warnings) }
        let path = directory + "/log.sock"
        let sink = LogSink(path: path, maxRecordBytes: maxRecordBytes, logger: logger, onRecord: collector.handler)
        let fixture = SinkFixture(directory: directory, path: path, sink: sink, warnings: warnings, group: group,
                                  collector: collector)
        do {
            try await sink.start(on: group)
            try await body(fixture)
        } catch {
            try? await sink.stop()
            try? await group.shutdownGracefully()
            removeDirectory(directory)
            throw error
        }
        try await sink.stop()
        try await group.shutdownGracefully()
        removeDirectory(directory)
    }

    init(directory: String, path: String, sink: LogSink, warnings: NIOLockedValueBox<[String]>,
         group: MultiThreadedEventLoopGroup, collector: RecordCollector) {
        self.directory = directory
        self.path = path
        self.sink = sink
        self.warnings = warnings
        self.group = group
        self.collector = collector
    }

    /// Waits (polling, up to `timeout`) until `condition` holds; the box is loaded, so be generous.
    func waitUntil(timeout: Duration = .seconds(15), _ condition: (SinkFixture) -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if condition(self) { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return condition(self)
    }

    /// A raw client connection to the sink.
    func connect() async throws -> any Channel {
        try await ClientBootstrap(group: group).connect(unixDomainSocketPath: path).get()
    }
}

extension Channel {
    func send(_ bytes: [UInt8]) async throws {
        try await writeAndFlush(ByteBuffer(bytes: bytes)).get()
    }
}

/// A record framed for the sink: a 4-byte big-endian length, then the payload.
func framed(_ payload: [UInt8]) -> [UInt8] {
    let length = UInt32(payload.count)
    return [UInt8(length >> 24), UInt8(length >> 16 & 0xff), UInt8(length >> 8 & 0xff), UInt8(length & 0xff)] + payload
}

func framedJSON(_ json: String) -> [UInt8] {
    framed(Array(json.utf8))
}

// MARK: - Python

struct PythonRun {
    var status: Int32
    var output: [UInt8]
    var errorOutput: String
    var pid: Int
}

/// Runs `python3 -c code arguments...` to completion. Output goes through files, not pipes, so a chatty
/// script cannot block on a full pipe while we wait for it to exit.
func runPython(_ code: String, arguments: [String] = []) async throws -> PythonRun {
    let directory = try makeTemporaryDirectory()
    defer { removeDirectory(directory) }
    let outputPath = directory + "/stdout", errorPath = directory + "/stderr"
    try #require(FileManager.default.createFile(atPath: outputPath, contents: nil))
    try #require(FileManager.default.createFile(atPath: errorPath, contents: nil))
    let output = open(outputPath, O_WRONLY | O_CLOEXEC), errorOutput = open(errorPath, O_WRONLY | O_CLOEXEC)
    defer {
        close(output)
        close(errorOutput)
    }
    let process = try ChildProcess("python3", ["-c", code] + arguments,
                                   standardOutput: .descriptor(output), standardError: .descriptor(errorOutput))
    let finished = try await offThePool { process.waitForExit(timeout: 120) }
    try #require(finished, "python3 did not finish within 120 s")
    return PythonRun(status: process.terminationStatus,
                     output: Array(try Data(contentsOf: URL(fileURLWithPath: outputPath))),
                     errorOutput: (try? String(contentsOfFile: errorPath, encoding: .utf8)) ?? "",
                     pid: Int(process.processIdentifier))
}

/// What a Python expression prints as bytes to stdout (for pickles made by real Python).
func pythonBytes(_ code: String) async throws -> [UInt8] {
    let run = try await runPython("import sys, pickle, logging, logging.handlers\n" + code)
    try #require(run.status == 0, "python3 failed: \(run.errorOutput)")
    return run.output
}
