import NIOCore
import Testing

@testable import CynicLogSink

@Suite struct LogRecordTests {
    func decode(_ json: String, peer: Int? = nil) throws -> LogRecord {
        try LogRecord.decode(payload: ByteBuffer(string: json), peerProcessID: peer)
    }

    @Test func jsonRecord() throws {
        let record = try decode("""
             {"level": "warn", "name": "svc.db", "message": "slow query", "process": 42, "source": "svc",
              "created": 1700000000, "unknown": {"nested": [1, 2]}}
            """)
        #expect(record == LogRecord(level: "WARNING", levelNumber: 30, loggerName: "svc.db", message: "slow query",
                                    processID: 42, source: "svc", created: 1_700_000_000, format: .json))
    }

    @Test func jsonAliasesAndNumericLevels() throws {
        let numeric = try decode(#"{"level": 40, "logger": "a", "msg": "m"}"#, peer: 7)
        #expect(numeric.level == "ERROR")
        #expect(numeric.levelNumber == 40)
        #expect(numeric.loggerName == "a")
        #expect(numeric.message == "m")
        #expect(numeric.processID == 7, "the peer's pid stands in for a missing one")

        #expect(try decode(#"{"level": 15, "message": "x"}"#).level == "Level 15")
        #expect(try decode(#"{"level": "30", "message": "x"}"#).level == "WARNING")
        #expect(try decode(#"{"level": "trace", "message": "x"}"#).level == "TRACE")
        #expect(try decode(#"{"message": "x"}"#).level == "INFO")
        #expect(try decode(#"{"message": 12}"#).message == "12")
        #expect(try decode(#"{"message": "x", "process": "worker-1"}"#).processName == "worker-1")
    }

    @Test func badJSONIsUndecodable() {
        for json in [#"{"name": "no message"}"#, #"{"message": "x""#, #"{"message": {"a": 1}}"#, "{}", "[1]", "hello"] {
            #expect(throws: UndecodableRecord.self, "\(json)") { try decode(json) }
        }
    }

    @Test func consoleLine() {
        let python = LogRecord(level: "WARNING", loggerName: "tests.client", message: "something happened",
                               processID: 1234, format: .pickle)
        #expect(python.consoleLine == "[py:1234 tests.client] WARNING something happened")

        let json = LogRecord(level: "INFO", loggerName: "", message: "hi", format: .json)
        #expect(json.consoleLine == "[json] INFO hi")

        let labelled = LogRecord(level: "INFO", loggerName: "db", message: "hi", processID: 9, source: "svc", format: .json)
        #expect(labelled.consoleLine == "[svc:9 db] INFO hi")
    }

    @Test func multiLineAndControlCharacters() {
        let record = LogRecord(level: "ERROR", loggerName: "x", message: "failed\r\nsecond line",
                               processID: 1, exceptionText: "Traceback (most recent call last):\n  File \"a.py\"\nZeroDivisionError\n",
                               format: .pickle)
        #expect(record.consoleLine == """
            [py:1 x] ERROR failed
                second line
                Traceback (most recent call last):
                  File "a.py"
                ZeroDivisionError
            """)

        let hostile = LogRecord(level: "INFO", loggerName: "a\nb", message: "\u{1B}[2Jclear\rover", format: .json)
        #expect(hostile.consoleLine == "[json a\\u{A}b] INFO \\u{1B}[2Jclear\\u{D}over")
    }
}
