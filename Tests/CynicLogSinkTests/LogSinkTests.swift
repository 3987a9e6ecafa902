import Foundation
import Logging
import NIOCore
import NIOPosix
import Testing

@testable import CynicLogSink

/// The sink over a real Unix socket, each test on its own socket.
@Suite struct LogSinkTests {
    static let socketHandlerClient = """
        import logging, logging.handlers, sys
        handler = logging.handlers.SocketHandler(sys.argv[1], None)  # port None: a Unix socket
        log = logging.getLogger('tests.client')
        log.setLevel(logging.DEBUG)
        log.propagate = False
        log.addHandler(handler)
        log.info('hello from %s', 'python')
        log.warning('something happened')
        try:
            1 / 0
        except ZeroDivisionError:
            log.exception('division failed')
        handler.close()
        """

    static let jsonClient = """
        import json, os, socket, struct, sys
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(20)
        s.connect(sys.argv[1])
        for level, message in [('DEBUG', 'json one'), (40, 'json two\\nsecond line')]:
            body = json.dumps({'level': level, 'name': 'tests.json', 'message': message,
                               'process': os.getpid(), 'extra': {'ignored': [1, 2]}}).encode()
            s.sendall(struct.pack('>I', len(body)) + body)
        s.close()
        """

    @Test("records from two Python processes at once, pickle and JSON")
    func twoPythonProcesses() async throws {
        try await SinkFixture.with { sink in
            async let pickling = runPython(Self.socketHandlerClient, arguments: [sink.path])
            async let json = runPython(Self.jsonClient, arguments: [sink.path])
            let (python, jsonRun) = try await (pickling, json)
            #expect(python.status == 0, "\(python.errorOutput)")
            #expect(jsonRun.status == 0, "\(jsonRun.errorOutput)")
            #expect(await sink.waitUntil { $0.records.count >= 5 })

            let records = sink.records
            let fromPython = records.filter { $0.format == .pickle }
            #expect(fromPython.map(\.level) == ["INFO", "WARNING", "ERROR"])
            #expect(fromPython.map(\.message) == ["hello from python", "something happened", "division failed"])
            #expect(fromPython.allSatisfy { $0.loggerName == "tests.client" && $0.processID == python.pid })
            #expect(fromPython.last?.exceptionText?.contains("ZeroDivisionError") == true)
            #expect(fromPython.first?.consoleLine == "[py:\(python.pid) tests.client] INFO hello from python")

            let fromJSON = records.filter { $0.format == .json }
            #expect(fromJSON.map(\.level) == ["DEBUG", "ERROR"])
            #expect(fromJSON.map(\.message) == ["json one", "json two\nsecond line"])
            #expect(fromJSON.allSatisfy { $0.loggerName == "tests.json" && $0.processID == jsonRun.pid })

            #expect(records.count == 5)
            #expect(sink.warningMessages == [])
        }
    }

    @Test("a 0xFFFFFFFF length prefix is skipped without buffering; others carry on")
    func hostileLengthPrefix() async throws {
        try await SinkFixture.with { sink in
            let hostile = try await sink.connect()
            // The warning comes as soon as the prefix arrives, long before 4 GiB could: nothing waits to
            // buffer the record. The bytes after it are dropped as they come.
            try await hostile.send([0xff, 0xff, 0xff, 0xff] + Array(repeating: 0x41, count: 64 * 1024))
            #expect(await sink.waitUntil { $0.warningMessages.count == 1 })
            let warning = try #require(sink.warningMessages.first)
            #expect(warning.contains("connection 1"))
            #expect(warning.contains("4294967295"))

            let honest = try await sink.connect()
            try await honest.send(framedJSON(#"{"level": "INFO", "name": "honest", "message": "still here"}"#))
            #expect(await sink.waitUntil { $0.records.contains { $0.message == "still here" } })

            // More hostile bytes, a valid-looking frame among them: all are part of the skipped record.
            try await hostile.send(framedJSON(#"{"message": "swallowed"}"#) + Array(repeating: 0x42, count: 1 << 20))
            let later = try await sink.connect()
            try await later.send(framedJSON(#"{"level": "INFO", "name": "later", "message": "new connection"}"#))
            #expect(await sink.waitUntil { $0.records.contains { $0.message == "new connection" } })

            #expect(sink.records.map(\.message) == ["still here", "new connection"])
            #expect(sink.warningMessages.count == 1)
            for channel in [hostile, honest, later] { try await channel.close() }
        }
    }

    @Test("oversized, zero-length and undecodable records are skipped with a warning each")
    func badRecordsAreSkipped() async throws {
        try await SinkFixture.with(maxRecordBytes: 1024) { sink in
            let client = try await sink.connect()
            let oversized = framedJSON(#"{"message": ""# + String(repeating: "x", count: 4096) + #""}"#)
            let malicious = framed(Array("cos\nsystem\n(S'true'\ntR.".utf8))
            try await client.send(framedJSON(#"{"message": "first"}"#) + oversized + framedJSON(#"{"message": "second"}"#)
                                  + framed([]) + framedJSON(#"{"message": "third"}"#)
                                  + framed(Array("not a record".utf8)) + malicious
                                  + framedJSON(#"{"message": "fourth"}"#))
            #expect(await sink.waitUntil { $0.records.count == 4 && $0.warningMessages.count == 4 })
            #expect(sink.records.map(\.message) == ["first", "second", "third", "fourth"])

            let warnings = sink.warningMessages
            #expect(warnings.allSatisfy { $0.contains("connection 1") })
            #expect(warnings[0].contains("\(oversized.count - 4) bytes") && warnings[0].contains("1024"))
            #expect(warnings[1].contains("zero-length"))
            #expect(warnings[2].contains("undecodable"))
            #expect(warnings[3].contains("GLOBAL"))
            try await client.close()
        }
    }

    @Test("a record cut short by the client closing is reported")
    func truncatedRecord() async throws {
        try await SinkFixture.with { sink in
            let client = try await sink.connect()
            try await client.send(Array(framedJSON(#"{"message": "cut short"}"#).dropLast(3)))
            try await client.close()
            #expect(await sink.waitUntil { $0.warningMessages.count == 1 })
            #expect(sink.warningMessages.first?.contains("connection closed after") == true)
            #expect(sink.records.isEmpty)
        }
    }

    @Test("a stale socket file is replaced; a regular file or a live socket is refused; stop removes the socket")
    func socketFileHandling() async throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
        let path = directory + "/log.sock"

        // A socket nobody listens on, as a crashed sink leaves it.
        let stale = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in path.utf8.enumerated() { raw[index] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(stale, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        try #require(bound == 0)
        close(stale)

        let sink = LogSink(path: path, logger: logger) { _ in }
        try await sink.start(on: group)
        await #expect(throws: LogSinkError.self) { try await sink.start(on: group) }

        let second = LogSink(path: path, logger: logger) { _ in }
        let inUse = await #expect(throws: LogSinkError.self) { try await second.start(on: group) }
        #expect("\(String(describing: inUse))".contains("already listening"))

        try await sink.stop()
        #expect(!FileManager.default.fileExists(atPath: path))

        try #require(FileManager.default.createFile(atPath: path, contents: Data("keep me".utf8)))
        let refused = await #expect(throws: LogSinkError.self) { try await sink.start(on: group) }
        #expect("\(String(describing: refused))".contains("is not a socket"))
        #expect(FileManager.default.contents(atPath: path) == Data("keep me".utf8))

        try await group.shutdownGracefully()
    }
}
