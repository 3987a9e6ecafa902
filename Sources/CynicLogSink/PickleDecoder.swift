/// A value a pickle can hold when it carries plain data only.
///
/// This is what Python's `logging.handlers.SocketHandler` sends: `pickle.dumps(record.__dict__, 1)`, a
/// dict of strings, numbers, `None` and small containers.
enum PickleValue: Hashable, Sendable {
    case none
    case bool(Bool)
    case int(Int)
    /// An integer outside `Int`'s range, in decimal.
    case bigInt(String)
    case float(Double)
    case string(String)
    case bytes([UInt8])
    case list([PickleValue])
    case tuple([PickleValue])
    case dict([PickleValue: PickleValue])
}

/// Why a pickle was refused; `offset` is the byte of the opcode at fault.
struct PickleError: Error, CustomStringConvertible {
    var offset: Int
    var reason: String
    var description: String { "pickle byte \(offset): \(reason)" }
}

/// A pickle reader for the plain-data subset of protocols 0 to 5.
///
/// It is an interpreter for a stack machine that can only build strings, numbers and containers: any
/// opcode that would import a name or call something (GLOBAL, REDUCE, BUILD, INST, OBJ, NEWOBJ, ...) is
/// refused, so nothing a sender writes is ever executed. Parsing is iterative; the stack, the memo, the
/// nesting of the result and its expanded size are all bounded by `Limits`, so a hostile pickle (a
/// recursive list, a "billion laughs" of shared references) fails instead of exhausting memory.
struct PickleDecoder {
    struct Limits: Sendable {
        /// Values on the machine's stack at once.
        var maxStackDepth = 65_536
        /// Memo entries (`PUT`, `BINPUT`, `MEMOIZE`).
        var maxMemoEntries = 65_536
        /// Container nesting in the result.
        var maxNesting = 64
        /// Values in the result once shared references are expanded.
        var maxValues = 1 << 20
    }

    /// Decodes one pickle from `bytes`; bytes after its STOP are ignored, as `pickle.loads` does.
    static func decode(_ bytes: [UInt8], limits: Limits = Limits()) throws(PickleError) -> PickleValue {
        let boxes = PickleBoxes()
        defer { boxes.empty() }
        return try decode(bytes, limits: limits, boxes: boxes)
    }

    /// `decode`, with the lists and dicts it makes kept in `boxes`, which the caller empties.
    static func decode(_ bytes: [UInt8], limits: Limits, boxes: PickleBoxes) throws(PickleError) -> PickleValue {
        var machine = Machine(bytes: bytes, limits: limits, boxes: boxes)
        let root = try machine.run()
        var budget = limits.maxValues
        var open = Set<ObjectIdentifier>()
        return try root.value(depth: 0, limits: limits, budget: &budget, open: &open)
    }
}

// MARK: - The machine

/// Lists and dicts are mutable while a pickle is read (APPEND and SETITEM act on the one that is on the
/// stack, which the memo may share), so they are boxes until the end.
private final class ListBox {
    var items: [Node] = []
}

private final class DictBox {
    /// In pickle order; a later duplicate key wins when the dict is built, as in Python.
    var items: [(key: PickleValue, value: Node)] = []
}

/// Every list and dict a pickle made. A pickle can put a container inside itself (`d['self'] =
/// d`, or through another), a cycle that reference counting never frees: each such record sent
/// to the sink would leak its boxes. Emptying them all once the value is out breaks every cycle.
final class PickleBoxes {
    fileprivate var lists: [ListBox] = []
    fileprivate var dicts: [DictBox] = []

    /// The boxes, for a test to watch them go.
    var objects: [AnyObject] { lists.map { $0 as AnyObject } + dicts.map { $0 as AnyObject } }

    fileprivate func list() -> ListBox {
        let box = ListBox()
        lists.append(box)
        return box
    }

    fileprivate func dict() -> DictBox {
        let box = DictBox()
        dicts.append(box)
        return box
    }

    func empty() {
        for box in lists { box.items = [] }
        for box in dicts { box.items = [] }
        lists = []
        dicts = []
    }
}

private enum Node {
    case scalar(PickleValue)
    case list(ListBox)
    case dict(DictBox)
    case tuple([Node])

    func value(depth: Int, limits: PickleDecoder.Limits, budget: inout Int,
               open: inout Set<ObjectIdentifier>) throws(PickleError) -> PickleValue {
        budget -= 1
        guard budget >= 0 else {
            throw PickleError(offset: 0, reason: "more than \(limits.maxValues) values once shared references are expanded")
        }
        if case .scalar(let value) = self { return value }
        guard depth < limits.maxNesting else {
            throw PickleError(offset: 0, reason: "containers nested more than \(limits.maxNesting) deep")
        }
        switch self {
        case .scalar(let value):
            return value
        case .tuple(let items):
            var values: [PickleValue] = []
            for item in items {
                values.append(try item.value(depth: depth + 1, limits: limits, budget: &budget, open: &open))
            }
            return .tuple(values)
        case .list(let box):
            let id = ObjectIdentifier(box)
            guard open.insert(id).inserted else { throw PickleError(offset: 0, reason: "a list contains itself") }
            defer { open.remove(id) }
            var values: [PickleValue] = []
            for item in box.items {
                values.append(try item.value(depth: depth + 1, limits: limits, budget: &budget, open: &open))
            }
            return .list(values)
        case .dict(let box):
            let id = ObjectIdentifier(box)
            guard open.insert(id).inserted else { throw PickleError(offset: 0, reason: "a dict contains itself") }
            defer { open.remove(id) }
            var values: [PickleValue: PickleValue] = [:]
            for (key, item) in box.items {
                values[key] = try item.value(depth: depth + 1, limits: limits, budget: &budget, open: &open)
            }
            return .dict(values)
        }
    }
}

private struct Machine {
    let bytes: [UInt8]
    let limits: PickleDecoder.Limits
    var position = 0
    /// Where the opcode being run starts, for error messages.
    var opcodeOffset = 0
    var stack: [Node] = []
    /// Stack heights at each MARK.
    var marks: [Int] = []
    var memo: [Int: Node] = [:]
    let boxes: PickleBoxes

    init(bytes: [UInt8], limits: PickleDecoder.Limits, boxes: PickleBoxes) {
        self.bytes = bytes
        self.limits = limits
        self.boxes = boxes
    }

    func failure(_ reason: String) -> PickleError {
        PickleError(offset: opcodeOffset, reason: reason)
    }

    mutating func run() throws(PickleError) -> Node {
        while true {
            opcodeOffset = position
            let opcode = try readByte()
            switch opcode {
            case 0x80: // PROTO
                let proto = try readByte()
                guard proto <= 5 else { throw failure("unsupported pickle protocol \(proto)") }
            case 0x95: // FRAME: a length hint only
                _ = try read(8)
            case UInt8(ascii: "."): // STOP
                return try pop()

            case UInt8(ascii: "("): // MARK
                marks.append(stack.count)
            case UInt8(ascii: "}"): // EMPTY_DICT
                try push(.dict(boxes.dict()))
            case UInt8(ascii: "]"): // EMPTY_LIST
                try push(.list(boxes.list()))
            case UInt8(ascii: ")"): // EMPTY_TUPLE
                try push(.tuple([]))
            case UInt8(ascii: "d"): // DICT
                let items = try popToMark()
                let box = boxes.dict()
                try setItems(items, in: box)
                try push(.dict(box))
            case UInt8(ascii: "l"): // LIST
                let box = boxes.list()
                box.items = try popToMark()
                try push(.list(box))
            case UInt8(ascii: "t"): // TUPLE
                try push(.tuple(try popToMark()))
            case 0x85, 0x86, 0x87: // TUPLE1, TUPLE2, TUPLE3
                let count = Int(opcode - 0x84)
                guard stack.count - (marks.last ?? 0) >= count else { throw failure("stack underflow") }
                let items = Array(stack.suffix(count))
                stack.removeLast(count)
                try push(.tuple(items))
            case UInt8(ascii: "s"): // SETITEM
                let value = try pop()
                let key = try pop()
                try setItems([key, value], in: try topDict())
            case UInt8(ascii: "u"): // SETITEMS
                let items = try popToMark()
                try setItems(items, in: try topDict())
            case UInt8(ascii: "a"): // APPEND
                let value = try pop()
                try topList().items.append(value)
            case UInt8(ascii: "e"): // APPENDS
                let items = try popToMark()
                try topList().items.append(contentsOf: items)

            case UInt8(ascii: "N"): // NONE
                try push(.scalar(.none))
            case 0x88: // NEWTRUE
                try push(.scalar(.bool(true)))
            case 0x89: // NEWFALSE
                try push(.scalar(.bool(false)))
            case UInt8(ascii: "I"): // INT, with protocol 0's booleans
                let line = try readLine()
                switch line {
                case "01": try push(.scalar(.bool(true)))
                case "00": try push(.scalar(.bool(false)))
                default: try push(.scalar(try integer(fromDecimal: line)))
                }
            case UInt8(ascii: "L"): // LONG, "123L"
                var line = try readLine()
                if line.hasSuffix("L") { line.removeLast() }
                try push(.scalar(try integer(fromDecimal: line)))
            case 0x8a: // LONG1
                let count = Int(try readByte())
                try push(.scalar(Self.integer(littleEndianTwosComplement: try read(count))))
            case UInt8(ascii: "J"): // BININT
                try push(.scalar(.int(Int(Int32(bitPattern: UInt32(try readLittleEndian(4)))))))
            case UInt8(ascii: "K"): // BININT1
                try push(.scalar(.int(Int(try readByte()))))
            case UInt8(ascii: "M"): // BININT2
                try push(.scalar(.int(Int(try readLittleEndian(2)))))
            case UInt8(ascii: "G"): // BINFLOAT, big-endian
                let raw = try read(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
                try push(.scalar(.float(Double(bitPattern: raw))))
            case UInt8(ascii: "F"): // FLOAT
                let line = try readLine()
                guard let value = Double(line) else { throw failure("bad FLOAT \(line.debugDescription)") }
                try push(.scalar(.float(value)))

            case UInt8(ascii: "X"): // BINUNICODE
                try push(.scalar(.string(String(decoding: try read(try readLength(4)), as: UTF8.self))))
            case 0x8c: // SHORT_BINUNICODE
                try push(.scalar(.string(String(decoding: try read(Int(try readByte())), as: UTF8.self))))
            case 0x8d: // BINUNICODE8
                try push(.scalar(.string(String(decoding: try read(try readLength(8)), as: UTF8.self))))
            case UInt8(ascii: "V"): // UNICODE, raw-unicode-escape
                try push(.scalar(.string(Self.rawUnicodeEscapeDecoded(try readLineBytes()))))
            case UInt8(ascii: "T"): // BINSTRING: a Python 2 str, read as text like pickle.loads does
                try push(.scalar(.string(String(decoding: try read(try readLength(4)), as: UTF8.self))))
            case UInt8(ascii: "U"): // SHORT_BINSTRING
                try push(.scalar(.string(String(decoding: try read(Int(try readByte())), as: UTF8.self))))
            case UInt8(ascii: "B"): // BINBYTES
                try push(.scalar(.bytes(Array(try read(try readLength(4))))))
            case UInt8(ascii: "C"): // SHORT_BINBYTES
                try push(.scalar(.bytes(Array(try read(Int(try readByte()))))))

            case UInt8(ascii: "q"): // BINPUT
                try put(Int(try readByte()))
            case UInt8(ascii: "r"): // LONG_BINPUT
                try put(Int(try readLittleEndian(4)))
            case UInt8(ascii: "p"): // PUT
                try put(try memoIndex(fromDecimal: try readLine()))
            case 0x94: // MEMOIZE
                try put(memo.count)
            case UInt8(ascii: "h"): // BINGET
                try get(Int(try readByte()))
            case UInt8(ascii: "j"): // LONG_BINGET
                try get(Int(try readLittleEndian(4)))
            case UInt8(ascii: "g"): // GET
                try get(try memoIndex(fromDecimal: try readLine()))

            default:
                throw failure("opcode \(Self.describe(opcode)) is not plain data; refusing the pickle")
            }
        }
    }

    // MARK: Stack and memo

    mutating func push(_ node: Node) throws(PickleError) {
        guard stack.count < limits.maxStackDepth else {
            throw failure("more than \(limits.maxStackDepth) values on the stack")
        }
        stack.append(node)
    }

    mutating func pop() throws(PickleError) -> Node {
        guard stack.count > (marks.last ?? 0) else { throw failure("stack underflow") }
        return stack.removeLast()
    }

    mutating func popToMark() throws(PickleError) -> [Node] {
        guard let mark = marks.popLast() else { throw failure("no MARK on the stack") }
        let items = Array(stack[mark...])
        stack.removeSubrange(mark...)
        return items
    }

    func top() throws(PickleError) -> Node {
        guard stack.count > (marks.last ?? 0), let node = stack.last else { throw failure("stack underflow") }
        return node
    }

    func topDict() throws(PickleError) -> DictBox {
        guard case .dict(let box) = try top() else { throw failure("SETITEM on something that is not a dict") }
        return box
    }

    func topList() throws(PickleError) -> ListBox {
        guard case .list(let box) = try top() else { throw failure("APPEND on something that is not a list") }
        return box
    }

    /// Keys must be scalars: hashing a container key built from shared references could take
    /// exponential time, and a log record never has one.
    func setItems(_ items: [Node], in box: DictBox) throws(PickleError) {
        guard items.count % 2 == 0 else { throw failure("odd number of items for a dict") }
        var index = 0
        while index < items.count {
            guard case .scalar(let key) = items[index] else { throw failure("a dict key that is a container") }
            box.items.append((key, items[index + 1]))
            index += 2
        }
    }

    mutating func put(_ index: Int) throws(PickleError) {
        let node = try top()
        guard memo[index] != nil || memo.count < limits.maxMemoEntries else {
            throw failure("more than \(limits.maxMemoEntries) memo entries")
        }
        memo[index] = node
    }

    mutating func get(_ index: Int) throws(PickleError) {
        guard let node = memo[index] else { throw failure("memo entry \(index) was never stored") }
        try push(node)
    }

    // MARK: Reading

    mutating func readByte() throws(PickleError) -> UInt8 {
        guard position < bytes.count else { throw failure("truncated pickle (no STOP)") }
        defer { position += 1 }
        return bytes[position]
    }

    mutating func read(_ count: Int) throws(PickleError) -> ArraySlice<UInt8> {
        guard count >= 0, count <= bytes.count - position else {
            throw failure("truncated pickle: \(count) bytes announced, \(bytes.count - position) left")
        }
        defer { position += count }
        return bytes[position..<position + count]
    }

    mutating func readLittleEndian(_ count: Int) throws(PickleError) -> UInt64 {
        try read(count).reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
    }

    /// A length field; it must fit in what is left, so nothing is allocated for a length that lies.
    mutating func readLength(_ count: Int) throws(PickleError) -> Int {
        let length = try readLittleEndian(count)
        guard length <= UInt64(bytes.count - position) else {
            throw failure("length \(length) is longer than the rest of the pickle")
        }
        return Int(length)
    }

    mutating func readLineBytes() throws(PickleError) -> ArraySlice<UInt8> {
        guard let end = bytes[position...].firstIndex(of: UInt8(ascii: "\n")) else {
            throw failure("truncated pickle: unterminated line")
        }
        defer { position = end + 1 }
        return bytes[position..<end]
    }

    mutating func readLine() throws(PickleError) -> String {
        String(decoding: try readLineBytes(), as: UTF8.self)
    }

    // MARK: Values

    func integer(fromDecimal text: String) throws(PickleError) -> PickleValue {
        let trimmed = text.trimmingSpaces
        if let value = Int(trimmed) { return .int(value) }
        let digits = trimmed.hasPrefix("-") || trimmed.hasPrefix("+") ? trimmed.dropFirst() : Substring(trimmed)
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else {
            throw failure("bad integer \(text.debugDescription)")
        }
        return .bigInt(trimmed.hasPrefix("+") ? String(digits) : trimmed)
    }

    func memoIndex(fromDecimal text: String) throws(PickleError) -> Int {
        guard let index = Int(text), index >= 0 else { throw failure("bad memo index \(text.debugDescription)") }
        return index
    }

    static func integer(littleEndianTwosComplement bytes: ArraySlice<UInt8>) -> PickleValue {
        guard let last = bytes.last else { return .int(0) }
        let negative = last & 0x80 != 0
        // Drop sign-extension bytes so that small values fit in an Int.
        var magnitudeBytes = Array(bytes)
        while magnitudeBytes.count > 1, magnitudeBytes.last == (negative ? 0xff : 0x00),
              (magnitudeBytes[magnitudeBytes.count - 2] & 0x80 != 0) == negative {
            magnitudeBytes.removeLast()
        }
        if magnitudeBytes.count <= 8 {
            var raw = magnitudeBytes.reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            if negative, magnitudeBytes.count < 8 { raw |= ~UInt64(0) << (8 * magnitudeBytes.count) }
            return .int(Int(Int64(bitPattern: raw)))
        }
        // Wider than 64 bits: negate if needed, then divide by ten repeatedly (at most 255 bytes).
        if negative {
            var carry = true
            for index in magnitudeBytes.indices {
                let (sum, overflow) = (~magnitudeBytes[index]).addingReportingOverflow(carry ? 1 : 0)
                magnitudeBytes[index] = sum
                carry = carry && overflow
            }
        }
        var digits: [Character] = []
        var number = Array(magnitudeBytes.reversed()) // big-endian
        while number.contains(where: { $0 != 0 }) {
            var remainder = 0
            for index in number.indices {
                let accumulator = remainder << 8 | Int(number[index])
                number[index] = UInt8(accumulator / 10)
                remainder = accumulator % 10
            }
            digits.append(Character(String(remainder)))
        }
        return .bigInt((negative ? "-" : "") + String(digits.reversed()))
    }

    /// Python's raw-unicode-escape: bytes are Latin-1, except `\uXXXX` and `\UXXXXXXXX`.
    static func rawUnicodeEscapeDecoded(_ bytes: ArraySlice<UInt8>) -> String {
        var scalars = String.UnicodeScalarView()
        var index = bytes.startIndex
        while index < bytes.endIndex {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\\"), index + 1 < bytes.endIndex {
                let width = bytes[index + 1] == UInt8(ascii: "u") ? 4 : bytes[index + 1] == UInt8(ascii: "U") ? 8 : 0
                if width > 0, index + 2 + width <= bytes.endIndex,
                   let code = UInt32(String(decoding: bytes[(index + 2)..<(index + 2 + width)], as: UTF8.self), radix: 16) {
                    scalars.append(Unicode.Scalar(code) ?? "\u{FFFD}")
                    index += 2 + width
                    continue
                }
            }
            scalars.append(Unicode.Scalar(byte))
            index += 1
        }
        return String(scalars)
    }

    static func describe(_ opcode: UInt8) -> String {
        let names: [UInt8: String] = [
            UInt8(ascii: "c"): "GLOBAL", UInt8(ascii: "R"): "REDUCE", UInt8(ascii: "b"): "BUILD",
            UInt8(ascii: "i"): "INST", UInt8(ascii: "o"): "OBJ", 0x81: "NEWOBJ", 0x92: "NEWOBJ_EX",
            0x93: "STACK_GLOBAL", 0x82: "EXT1", 0x83: "EXT2", 0x84: "EXT4",
            UInt8(ascii: "P"): "PERSID", UInt8(ascii: "Q"): "BINPERSID",
        ]
        let hex = "0x" + (opcode < 0x10 ? "0" : "") + String(opcode, radix: 16)
        let printable = (0x21...0x7e).contains(opcode) ? " '\(Character(Unicode.Scalar(opcode)))'" : ""
        return (names[opcode].map { "\($0) " } ?? "") + "(\(hex)\(printable))"
    }
}

extension String {
    fileprivate var trimmingSpaces: String {
        String(self.drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
    }
}
