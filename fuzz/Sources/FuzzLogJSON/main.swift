// The log sink's JSON records: a payload whose first non-space byte is `{`.
//
// Checked: a payload is decoded or refused with a reason; a decoded record, written back as the
// JSON a sender would send for it, decodes to the same record.
@testable import CynicLogSink
import Foundation
import FuzzSupport
import NIOCore

/// A record as a sender writes it: the level as its number when it has one, else its name.
struct SentRecord: Encodable {
    let record: LogRecord

    enum Keys: String, CodingKey { case level, name, message, pid, processName, source, created, exc_text }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Keys.self)
        if let number = record.levelNumber {
            try container.encode(number, forKey: .level)
        } else {
            try container.encode(record.level, forKey: .level)
        }
        try container.encode(record.loggerName, forKey: .name)
        try container.encode(record.message, forKey: .message)
        try container.encodeIfPresent(record.processID, forKey: .pid)
        try container.encodeIfPresent(record.processName, forKey: .processName)
        try container.encodeIfPresent(record.source, forKey: .source)
        try container.encodeIfPresent(record.created, forKey: .created)
        try container.encodeIfPresent(record.exceptionText, forKey: .exc_text)
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzLogJSON(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    let input = bytes(start, count)
    let record: LogRecord
    do {
        // As the sink calls it: the payload decides JSON or pickle by its first byte.
        record = try LogRecord.decode(payload: ByteBuffer(bytes: input), peerProcessID: nil)
    } catch {
        invariant(!error.description.isEmpty, "a refused record without a reason")
        return 0
    }
    // JSON has no infinity to write back (a huge exponent reads as one).
    guard record.format == .json, record.created?.isFinite ?? true else { return 0 }
    let again: LogRecord
    do {
        again = try LogRecord.decode(payload: ByteBuffer(bytes: try JSONEncoder().encode(SentRecord(record: record))),
                                     peerProcessID: nil)
    } catch {
        invariant(false, "a decoded record, re-encoded, is refused: \(error)")
        return 0
    }
    invariant(again == record, "a decoded record does not survive re-encoding: \(record) became \(again)")
    return 0
}

/// `main`, as SwiftPM names it for this executable: libFuzzer's driver (see FuzzSupport).
@_cdecl("FuzzLogJSON_main")
public func entry(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    runFuzzer(argc, argv) { data, size in fuzzLogJSON(data, size) }
}
