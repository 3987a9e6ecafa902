// The log sink's pickle subset: what Python's SocketHandler sends, and anything else.
//
// Checked: a pickle decodes to plain data or is refused with a reason at a byte inside it; the
// value decoded, pickled again (by the writer below, in protocol-2 opcodes), decodes to the same
// value; and a dict goes on to a record or to a reason why it is not one.
@testable import CynicLogSink
import FuzzSupport

/// An integer's bytes, little-endian.
func littleEndian(_ value: some FixedWidthInteger) -> [UInt8] {
    (0..<(type(of: value).bitWidth / 8)).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }
}

/// Writes plain data as a pickle with the opcodes a protocol-2 pickler uses.
struct PickleWriter {
    var bytes: [UInt8] = [0x80, 2]

    mutating func write(_ value: PickleValue) {
        switch value {
        case .none: bytes.append(UInt8(ascii: "N"))
        case .bool(let flag): bytes.append(flag ? 0x88 : 0x89)
        case .int(let number): // LONG1 of 8 bytes, two's complement
            bytes += [0x8a, 8] + littleEndian(Int64(number))
        case .bigInt(let digits): // LONG, protocol 0's decimal text
            bytes += [UInt8(ascii: "L")] + Array(digits.utf8) + Array("L\n".utf8)
        case .float(let number):
            bytes += [UInt8(ascii: "G")] + littleEndian(number.bitPattern).reversed()
        case .string(let text):
            bytes += [UInt8(ascii: "X")] + littleEndian(UInt32(text.utf8.count)) + Array(text.utf8)
        case .bytes(let data):
            bytes += [UInt8(ascii: "B")] + littleEndian(UInt32(data.count)) + data
        case .list(let items):
            bytes += [UInt8(ascii: "]"), UInt8(ascii: "(")]
            items.forEach { write($0) }
            bytes.append(UInt8(ascii: "e"))
        case .tuple(let items):
            bytes.append(UInt8(ascii: "("))
            items.forEach { write($0) }
            bytes.append(UInt8(ascii: "t"))
        case .dict(let items):
            bytes += [UInt8(ascii: "}"), UInt8(ascii: "(")]
            for (key, item) in items {
                write(key)
                write(item)
            }
            bytes.append(UInt8(ascii: "u"))
        }
    }
}

/// How many values a value holds, itself included; re-pickling is skipped past a bound, since
/// shared references can make a small pickle a large value.
func size(of value: PickleValue, limit: Int) -> Int {
    var total = 1
    func add(_ items: some Sequence<PickleValue>) {
        for item in items where total <= limit { total += size(of: item, limit: limit - total) }
    }
    switch value {
    case .list(let items), .tuple(let items): add(items)
    case .dict(let items): add(items.keys); add(items.values)
    default: break
    }
    return total
}

/// Equality that holds for NaN too: a NaN float decodes as a NaN, which `==` says is not itself.
func same(_ a: PickleValue, _ b: PickleValue) -> Bool {
    switch (a, b) {
    case (.float(let x), .float(let y)): return x.bitPattern == y.bitPattern
    case (.list(let x), .list(let y)), (.tuple(let x), .tuple(let y)):
        return x.count == y.count && zip(x, y).allSatisfy { same($0, $1) }
    case (.dict(let x), .dict(let y)):
        // Keys are found by hashing, which NaN defeats: compare by key where it works.
        return x.count == y.count && x.allSatisfy { key, value in
            guard let other = y[key] else { return y.keys.contains { same($0, key) } }
            return same(value, other)
        }
    default: return a == b
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzLogPickle(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    let input = bytes(start, count)
    let value: PickleValue
    do {
        value = try PickleDecoder.decode(input)
    } catch {
        invariant(!error.reason.isEmpty, "a refused pickle without a reason")
        invariant((0...max(input.count, 0)).contains(error.offset), "refused at byte \(error.offset) of \(input.count)")
        return 0
    }
    if size(of: value, limit: 10_000) <= 10_000 {
        var writer = PickleWriter()
        writer.write(value)
        writer.bytes.append(UInt8(ascii: "."))
        do {
            let again = try PickleDecoder.decode(writer.bytes)
            invariant(same(again, value), "a decoded pickle does not survive re-pickling: \(value) became \(again)")
        } catch {
            invariant(false, "a decoded pickle, re-pickled, is refused: \(error)")
        }
    }
    do {
        let record = try LogRecord.fromPickledDict(value)
        invariant(record.format == .pickle, "a pickled record says it came as \(record.format)")
        invariant(record.message.count <= 65_536 + 3, "a message of \(record.message.count) characters passed the cut")
    } catch {
        invariant(!error.description.isEmpty, "a refused record without a reason")
    }
    return 0
}

/// `main`, as SwiftPM names it for this executable: libFuzzer's driver (see FuzzSupport).
@_cdecl("FuzzLogPickle_main")
public func entry(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    runFuzzer(argc, argv) { data, size in fuzzLogPickle(data, size) }
}
