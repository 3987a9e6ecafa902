import Foundation
import Testing

@testable import CynicLogSink

/// Pickles made by real Python, decoded by ours.
@Suite struct PickleDecoderTests {
    static let sample = """
        shared = [1]
        data = {'s': 'h\\u00e9llo\\n\\u20ac \\\\ x', 'i': 7, 'neg': -5, 'i2': 1000, 'i4': 70000,
                'big': 2**40, 'negbig': -2**40, 'huge': 2**70, 'neghuge': -2**70, 'f': 1.5, 'none': None,
                't': True, 'fl': False, 'l': [1, 'a', (1, 2)], 'tup': (), 't1': (1,), 't3': (1, 2, 3),
                't4': (1, 2, 3, 4), 'nested': {'k': [None]}, 'empty': {}, 'strings': ['x', 'x'],
                'a': shared, 'b': shared}
        """

    static let expected: PickleValue = .dict([
        .string("s"): .string("h\u{e9}llo\n\u{20ac} \\ x"),
        .string("i"): .int(7), .string("neg"): .int(-5), .string("i2"): .int(1000), .string("i4"): .int(70000),
        .string("big"): .int(1 << 40), .string("negbig"): .int(-(1 << 40)),
        .string("huge"): .bigInt("1180591620717411303424"), .string("neghuge"): .bigInt("-1180591620717411303424"),
        .string("f"): .float(1.5), .string("none"): .none, .string("t"): .bool(true), .string("fl"): .bool(false),
        .string("l"): .list([.int(1), .string("a"), .tuple([.int(1), .int(2)])]),
        .string("tup"): .tuple([]), .string("t1"): .tuple([.int(1)]),
        .string("t3"): .tuple([.int(1), .int(2), .int(3)]), .string("t4"): .tuple([.int(1), .int(2), .int(3), .int(4)]),
        .string("nested"): .dict([.string("k"): .list([.none])]), .string("empty"): .dict([:]),
        .string("strings"): .list([.string("x"), .string("x")]),
        .string("a"): .list([.int(1)]), .string("b"): .list([.int(1)]),
    ])

    @Test("plain data in every protocol", arguments: [0, 1, 2, 3, 4, 5])
    func plainData(proto: Int) async throws {
        let bytes = try await pythonBytes(Self.sample + "\nsys.stdout.buffer.write(pickle.dumps(data, \(proto)))")
        #expect(try PickleDecoder.decode(bytes) == Self.expected)
    }

    /// What SocketHandler sends, made by Python's own makeLogRecord and makePickle (protocol 1); protocols
    /// 2 and 4 pickle the same dict the same way.
    @Test("a realistic LogRecord dict", arguments: [1, 2, 4])
    func realisticLogRecord(proto: Int) async throws {
        let bytes = try await pythonBytes("""
            record = logging.makeLogRecord({'name': 'tests.realistic', 'levelno': 40, 'levelname': 'ERROR',
                'msg': 'failed %d times', 'args': (3,), 'process': 4321, 'processName': 'MainProcess',
                'created': 1700000000.25})
            try:
                1 / 0
            except ZeroDivisionError:
                record.exc_info = sys.exc_info()
            handler = logging.handlers.SocketHandler('/nonexistent', None)
            framed = handler.makePickle(record)
            if \(proto) != 1:
                d = pickle.loads(framed[4:])
                body = pickle.dumps(d, \(proto))
                framed = len(body).to_bytes(4, 'big') + body
            sys.stdout.buffer.write(framed)
            """)
        let length = Int(bytes[0]) << 24 | Int(bytes[1]) << 16 | Int(bytes[2]) << 8 | Int(bytes[3])
        #expect(length == bytes.count - 4)
        let payload = Array(bytes.dropFirst(4))

        guard case .dict(let dict) = try PickleDecoder.decode(payload) else {
            Issue.record("not a dict")
            return
        }
        #expect(dict[.string("args")] == PickleValue.none)
        #expect(dict[.string("lineno")] == .int(0))

        let record = try LogRecord.decode(payload: .init(bytes: payload), peerProcessID: 99)
        #expect(record.format == .pickle)
        #expect(record.level == "ERROR")
        #expect(record.levelNumber == 40)
        #expect(record.loggerName == "tests.realistic")
        #expect(record.message == "failed 3 times")
        #expect(record.processID == 4321)
        #expect(record.processName == "MainProcess")
        #expect(record.created == 1_700_000_000.25)
        #expect(record.exceptionText?.contains("ZeroDivisionError") == true)
        #expect(record.exceptionText?.hasPrefix("Traceback (most recent call last):") == true)
    }

    @Test("the classic os.system pickle is refused and runs nothing")
    func classicMaliciousPickle() throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let marker = directory + "/pwned"
        let bytes = Array("cos\nsystem\n(S'touch \(marker)'\ntR.".utf8)

        expectRefusal(bytes, mentioning: "GLOBAL")
        #expect(throws: UndecodableRecord.self) {
            try LogRecord.decode(payload: .init(bytes: bytes), peerProcessID: nil)
        }
        #expect(!FileManager.default.fileExists(atPath: marker))
    }

    /// Python writes these with `__reduce__`: GLOBAL then REDUCE in protocol 2, STACK_GLOBAL in protocol 4.
    @Test("a __reduce__ payload made by Python is refused", arguments: [1, 2, 4])
    func reducePickle(proto: Int) async throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let marker = directory + "/pwned"
        let bytes = try await pythonBytes("""
            import os
            class Evil:
                def __reduce__(self):
                    return (os.system, ('touch \(marker)',))
            sys.stdout.buffer.write(pickle.dumps({'name': 'x', 'msg': Evil()}, \(proto)))
            """)
        expectRefusal(bytes, mentioning: "GLOBAL")
        expectRefusal(bytes, mentioning: "not plain data")
        #expect(!FileManager.default.fileExists(atPath: marker))
    }

    @Test("nesting, self-reference and shared-reference expansion are bounded")
    func hostileShapes() async throws {
        let deep = try await pythonBytes("""
            x = []
            for _ in range(200):
                x = [x]
            sys.stdout.buffer.write(pickle.dumps(x, 2))
            """)
        expectRefusal(deep, mentioning: "nested")

        let recursive = try await pythonBytes("x = []\nx.append(x)\nsys.stdout.buffer.write(pickle.dumps(x, 2))")
        expectRefusal(recursive, mentioning: "contains itself")

        // 2^40 values once expanded, a few hundred bytes on the wire.
        let laughs = try await pythonBytes("""
            x = ['lol']
            for _ in range(40):
                x = [x, x]
            sys.stdout.buffer.write(pickle.dumps(x, 2))
            """)
        #expect(laughs.count < 2_000)
        expectRefusal(laughs, mentioning: "shared references")
    }

    @Test("the memo and the stack are bounded")
    func memoAndStackLimits() async throws {
        let manyStrings = try await pythonBytes(
            "sys.stdout.buffer.write(pickle.dumps({str(i): str(-i) for i in range(50)}, 1))")
        var limits = PickleDecoder.Limits()
        limits.maxMemoEntries = 10
        expectRefusal(manyStrings, limits: limits, mentioning: "memo")

        let wideTuple = try await pythonBytes("sys.stdout.buffer.write(pickle.dumps(tuple(range(50)), 1))")
        limits = PickleDecoder.Limits()
        limits.maxStackDepth = 10
        expectRefusal(wideTuple, limits: limits, mentioning: "stack")
        #expect(try PickleDecoder.decode(wideTuple) == .tuple((0..<50).map { .int($0) }))
    }

    @Test("truncated and malformed pickles are refused")
    func malformed() throws {
        let good: [UInt8] = Array("}q\u{0}(X\u{1}\u{0}\u{0}\u{0}aK\u{1}u.".utf8)
        #expect(try PickleDecoder.decode(good) == .dict([.string("a"): .int(1)]))
        #expect(throws: PickleError.self) { try PickleDecoder.decode(Array(good.dropLast())) }
        // BINUNICODE announcing 4 GiB: refused without allocating it.
        expectRefusal([0x58, 0xff, 0xff, 0xff, 0xff, 0x2e], mentioning: "length")
        #expect(throws: PickleError.self) { try PickleDecoder.decode(Array("h\u{5}.".utf8)) } // memo never stored
        #expect(throws: PickleError.self) { try PickleDecoder.decode(Array("s.".utf8)) } // stack underflow
        #expect(throws: PickleError.self) { try PickleDecoder.decode([]) }
    }

    func expectRefusal(_ bytes: [UInt8], limits: PickleDecoder.Limits = .init(), mentioning text: String,
                       sourceLocation: SourceLocation = #_sourceLocation) {
        let error = #expect(throws: PickleError.self, sourceLocation: sourceLocation) {
            try PickleDecoder.decode(bytes, limits: limits)
        }
        #expect(error?.reason.contains(text) == true, "\(String(describing: error))", sourceLocation: sourceLocation)
    }
}
