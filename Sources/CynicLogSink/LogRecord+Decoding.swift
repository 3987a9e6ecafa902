#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import NIOCore

/// Why a payload could not be read as a record; the text goes into the sink's warning.
struct UndecodableRecord: Error, CustomStringConvertible {
    var description: String
}

extension LogRecord {
    /// Reads one framed payload: a JSON object when its first non-space byte is `{`, else a pickle of a
    /// Python LogRecord's `__dict__`. `peerProcessID` stands in for a pid the record does not carry.
    static func decode(payload: ByteBuffer, peerProcessID: Int?) throws(UndecodableRecord) -> LogRecord {
        let bytes = Array(payload.readableBytesView)
        let firstByte = bytes.first { ![0x20, 0x09, 0x0A, 0x0D].contains($0) }
        var record: LogRecord
        if firstByte == UInt8(ascii: "{") {
            record = try fromJSON(bytes)
        } else {
            let value: PickleValue
            do {
                value = try PickleDecoder.decode(bytes)
            } catch {
                throw UndecodableRecord(description: "neither a JSON object nor a plain-data pickle (\(error))")
            }
            record = try fromPickledDict(value)
        }
        if record.processID == nil { record.processID = peerProcessID }
        return record
    }

    // MARK: JSON

    /// A JSON record: `level` (a name or a number), `name` or `logger`, `message` or `msg`, and optional
    /// `source`, `process` or `pid`, `processName`, `created`, `exc_text`. Other keys are ignored.
    static func fromJSON(_ bytes: [UInt8]) throws(UndecodableRecord) -> LogRecord {
        let line: JSONLine
        do {
            line = try JSONDecoder().decode(JSONLine.self, from: Data(bytes))
        } catch {
            throw UndecodableRecord(description: "bad JSON record (\(Self.summary(of: error)))")
        }
        guard let message = line.message ?? line.msg else {
            throw UndecodableRecord(description: "JSON record has no \"message\" or \"msg\"")
        }
        var level = (name: "INFO", number: Optional(20))
        if let value = line.level {
            if let number = value.integer ?? value.number.flatMap({ Int(exactly: $0) }) {
                level = (levelName(forNumber: number), number)
            } else {
                level = normalizedLevel(value.text)
            }
        }
        var processID = line.pid?.integer
        var processName = line.processName?.text
        if let process = line.process {
            if let number = process.integer { processID = processID ?? number } else { processName = processName ?? process.text }
        }
        return LogRecord(level: level.name, levelNumber: level.number,
                         loggerName: (line.name ?? line.logger)?.text ?? "", message: message.text,
                         processID: processID, processName: processName, source: line.source?.text,
                         created: line.created?.number, exceptionText: line.exc_text?.text, format: .json)
    }

    /// Foundation's decoding errors are long and name Swift types; a sender needs the gist.
    private static func summary(of error: any Error) -> String {
        switch error {
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context):
            let key = context.codingPath.map(\.stringValue).joined(separator: ".")
            return key.isEmpty ? "not a JSON object" : "\"\(key)\" must be a string, a number or a boolean"
        case DecodingError.dataCorrupted(let context):
            return context.codingPath.isEmpty ? "not valid JSON" : context.debugDescription
        default:
            return "\(error)"
        }
    }

    // MARK: Pickle

    /// A pickled `record.__dict__` as `SocketHandler.makePickle` sends it: `msg` is already formatted.
    static func fromPickledDict(_ value: PickleValue) throws(UndecodableRecord) -> LogRecord {
        guard case .dict(let dict) = value else {
            throw UndecodableRecord(description: "pickle holds \(value.kind), not a LogRecord dict")
        }
        func field(_ key: String) -> PickleValue? {
            switch dict[.string(key)] {
            case nil, .none?: return nil
            case let found?: return found
            }
        }
        func string(_ key: String) -> String? {
            if case .string(let text)? = field(key) { return text }
            return nil
        }
        func integer(_ key: String) -> Int? {
            if case .int(let number)? = field(key) { return number }
            return nil
        }

        guard let msg = field("msg") else { throw UndecodableRecord(description: "pickled record has no \"msg\"") }
        let levelNumber = integer("levelno")
        let level = string("levelname").map { normalizedLevel($0).name }
            ?? levelNumber.map(levelName(forNumber:)) ?? "NOTSET"
        var created: Double?
        switch field("created") {
        case .float(let seconds)?: created = seconds
        case .int(let seconds)?: created = Double(seconds)
        default: created = nil
        }
        return LogRecord(level: level, levelNumber: levelNumber ?? normalizedLevel(level).number,
                         loggerName: string("name") ?? "", message: msg.text(limit: 65_536),
                         processID: integer("process"), processName: string("processName"),
                         created: created, exceptionText: string("exc_text"), format: .pickle)
    }
}

// MARK: - Helpers

/// The keys a JSON record may use; JSONDecoder ignores the rest.
private struct JSONLine: Decodable {
    var level, name, logger, message, msg, source, process, pid, processName, created, exc_text: JSONScalar?
}

/// A JSON value that is not a container, so that `"level": 30` and `"message": 42` read as well as strings.
private enum JSONScalar: Decodable {
    case string(String)
    case int(Int)
    case double(Double)
    case bool(Bool)

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode(Int.self) {
            self = .int(value)
        } else if let value = try? container.decode(Double.self) {
            self = .double(value)
        } else {
            self = .bool(try container.decode(Bool.self))
        }
    }

    var text: String {
        switch self {
        case .string(let value): value
        case .int(let value): String(value)
        case .double(let value): String(value)
        case .bool(let value): value ? "true" : "false"
        }
    }

    var integer: Int? {
        switch self {
        case .int(let value): value
        case .string(let value): Int(value)
        default: nil
        }
    }

    var number: Double? {
        switch self {
        case .int(let value): Double(value)
        case .double(let value): value
        default: nil
        }
    }
}

extension PickleValue {
    var kind: String {
        switch self {
        case .none: "None"
        case .bool: "a bool"
        case .int, .bigInt: "an int"
        case .float: "a float"
        case .string: "a str"
        case .bytes: "bytes"
        case .list: "a list"
        case .tuple: "a tuple"
        case .dict: "a dict"
        }
    }

    /// Text for a value that should have been a string, cut at about `limit` characters: shared
    /// references can make a small pickle expand into a huge value.
    func text(limit: Int) -> String {
        var output = ""
        render(into: &output, limit: limit)
        return output.utf8.count > limit ? String(output.prefix(limit)) + "..." : output
    }

    private func render(into output: inout String, limit: Int) {
        guard output.utf8.count <= limit else { return }
        func join(_ items: some Sequence<PickleValue>, _ open: String, _ close: String) {
            output += open
            for (index, item) in items.enumerated() {
                guard output.utf8.count <= limit else { return }
                if index > 0 { output += ", " }
                item.render(into: &output, limit: limit)
            }
            output += close
        }
        switch self {
        case .none: output += "None"
        case .bool(let value): output += value ? "True" : "False"
        case .int(let value): output += String(value)
        case .bigInt(let value): output += value
        case .float(let value): output += String(value)
        case .string(let value): output += value
        case .bytes(let value): output += "b<\(value.count) bytes>"
        case .list(let items): join(items, "[", "]")
        case .tuple(let items): join(items, "(", ")")
        case .dict(let items):
            output += "{"
            for (index, (key, value)) in items.enumerated() {
                guard output.utf8.count <= limit else { break }
                if index > 0 { output += ", " }
                key.render(into: &output, limit: limit)
                output += ": "
                value.render(into: &output, limit: limit)
            }
            output += "}"
        }
    }
}
