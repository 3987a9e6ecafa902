/// Where one HTTP/1.x response ends, read from its bytes as they come, split anywhere (RFC 9112
/// §6.3): after the head for a HEAD request, a 1xx-free 204 or 304; after Content-Length bytes;
/// after the last chunk and its trailers; or, with neither, when the server closes. Interim 1xx
/// responses (100 Continue) are part of the exchange and framing goes on to the final one; a 101
/// or a 2xx to CONNECT turns the connection into a tunnel, which ends at close.
///
/// A pure state machine: it never touches a socket and keeps only the head and the line it is
/// reading, each bounded, never the body. A proxy feeds it what the server sends and relays as
/// many bytes as it says belong to the response:
///
///     var framing = HTTPResponseFraming(requestMethod: "GET")
///     let used = try framing.consume(bytes)   // relay bytes[..<used]
///     if framing.isComplete { ... }           // the response is over; bytes[used...] are not its
///     try framing.endOfInput()                // when the server closes
public struct HTTPResponseFraming {
    /// A response's status line and headers.
    public struct Head: Sendable {
        public var version: (major: UInt16, minor: UInt16)
        public var status: Int
        /// In the order sent, names as the server wrote them.
        public var headers: [(name: String, value: String)]

        /// Every value of header `name` (case-insensitive), in order.
        public func values(_ name: String) -> [String] {
            let name = name.lowercased()
            return headers.filter { $0.name.lowercased() == name }.map(\.value)
        }

        /// The comma-separated tokens of every `name` header, lowercased.
        func tokens(_ name: String) -> [String] {
            values(name).flatMap { $0.split(separator: ",") }.map { $0.trimmed.lowercased() }
        }
    }

    public enum Failure: Error, Equatable, CustomStringConvertible {
        /// The status line and headers went past the limit without ending.
        case headTooLarge(limit: Int)
        case malformedStatusLine(String)
        case malformedHeader(String)
        /// A Content-Length that is not a number, or several that disagree.
        case invalidContentLength(String)
        case invalidChunkSize(String)
        /// A chunk's data was not followed by CRLF.
        case missingChunkEnd
        /// The server closed before the first byte of a response.
        case closedBeforeResponse
        /// The server closed in the middle of the response.
        case truncated

        public var description: String {
            switch self {
            case .headTooLarge(let limit): "response head larger than \(limit) bytes"
            case .malformedStatusLine(let line): "malformed status line '\(line)'"
            case .malformedHeader(let line): "malformed header line '\(line)'"
            case .invalidContentLength(let value): "invalid Content-Length '\(value)'"
            case .invalidChunkSize(let line): "invalid chunk size line '\(line)'"
            case .missingChunkEnd: "chunk data not followed by CRLF"
            case .closedBeforeResponse: "the server closed before responding"
            case .truncated: "the server closed in the middle of the response"
            }
        }
    }

    private enum State {
        /// Reading a head (an interim one, or the final one) into `line`.
        case head
        /// A body of known length: the bytes still to come.
        case fixedBody(remaining: UInt64)
        /// A chunk-size line, into `line`.
        case chunkSize
        case chunkData(remaining: UInt64)
        /// The CRLF after a chunk's data, as far as read into `line`.
        case chunkEnd
        /// The trailer section after the last chunk: the current line is in `line`; `total` bytes
        /// of it came before.
        case trailers(total: Int)
        /// Everything until the server closes.
        case untilClose
        case complete
    }

    private var state = State.head
    /// The head or line being read. Apart from `state`, so appending never copies it.
    private var line: [UInt8] = []
    private let requestMethod: String
    private let headLimit: Int
    /// Whether any byte was consumed, to tell a close before the response from one inside it.
    private var started = false

    /// The final (not 1xx) head, once read.
    public private(set) var head: Head?
    /// Interim (1xx) responses read before the final one.
    public private(set) var interimResponses = 0

    /// - Parameters:
    ///   - requestMethod: the method of the request this answers: a HEAD's response has no body,
    ///     a successful CONNECT's is a tunnel.
    ///   - headLimit: the most bytes a head (and, separately, the trailers) may have; 80 KiB as
    ///     the host allows a request.
    public init(requestMethod: String, headLimit: Int = 80 * 1024) {
        self.requestMethod = requestMethod.uppercased()
        self.headLimit = headLimit
    }

    /// The response is over: no byte more belongs to it.
    public var isComplete: Bool {
        if case .complete = state { return true }
        return false
    }

    /// The body runs until the server closes (no Content-Length, no chunked coding, or a tunnel):
    /// the client learns where it ends only from the close.
    public var endsAtClose: Bool {
        if case .untilClose = state { return true }
        return false
    }

    /// Whether the connection may carry another exchange after this response: HTTP/1.1 unless
    /// `Connection: close`, HTTP/1.0 only with `Connection: keep-alive`, never when the body ends
    /// at close. False until the final head is read.
    public var keepAlive: Bool {
        guard let head, !endsAtClose else { return false }
        let tokens = head.tokens("Connection")
        if tokens.contains("close") { return false }
        return head.version.major > 1 || head.version.minor >= 1 || tokens.contains("keep-alive")
    }

    /// Reads `bytes`, the next ones from the server; returns how many of them belong to this
    /// response: all, until it ends inside them. Throws when they cannot be HTTP; then nothing
    /// more can be framed.
    public mutating func consume(_ bytes: UnsafeRawBufferPointer) throws(Failure) -> Int {
        let lf = UInt8(ascii: "\n"), cr = UInt8(ascii: "\r")
        var index = 0
        if !bytes.isEmpty { started = true }
        while index < bytes.count {
            switch state {
            case .complete:
                return index
            case .untilClose:
                return bytes.count
            case .fixedBody(let remaining):
                let taken = min(remaining, UInt64(bytes.count - index))
                index += Int(taken)
                state = remaining == taken ? .complete : .fixedBody(remaining: remaining - taken)
            case .chunkData(let remaining):
                let taken = min(remaining, UInt64(bytes.count - index))
                index += Int(taken)
                state = remaining == taken ? .chunkEnd : .chunkData(remaining: remaining - taken)
            case .head, .chunkSize, .chunkEnd, .trailers:
                // Line by line, a byte at a time: heads and chunk lines are small.
                let byte = bytes[index]
                index += 1
                line.append(byte)
                try lineByteRead(byte == lf, cr: cr, lf: lf)
            }
        }
        return index
    }

    /// One more byte is in `line`; `endsLine` when it was a LF.
    private mutating func lineByteRead(_ endsLine: Bool, cr: UInt8, lf: UInt8) throws(Failure) {
        switch state {
        case .head:
            if endsLine, line.endsWithBlankLine {
                let buffer = line
                line.removeAll(keepingCapacity: true)
                try headEnded(buffer)
            } else if line.count > headLimit {
                throw .headTooLarge(limit: headLimit)
            }
        case .chunkSize:
            if endsLine {
                let text = line.lines.first ?? ""
                line.removeAll(keepingCapacity: true)
                try chunkSizeRead(text)
            } else if line.count > 4096 { // a size and extensions; real ones are a few bytes
                throw .invalidChunkSize(String(decoding: line.prefix(64), as: UTF8.self))
            }
        case .chunkEnd:
            switch line {
            case [cr]: break
            case [lf], [cr, lf]:
                line.removeAll(keepingCapacity: true)
                state = .chunkSize
            default: throw .missingChunkEnd
            }
        case .trailers(let total):
            guard total + line.count <= headLimit else { throw .headTooLarge(limit: headLimit) }
            guard endsLine else { return }
            let blank = line == [lf] || line == [cr, lf]
            state = blank ? .complete : .trailers(total: total + line.count)
            line.removeAll(keepingCapacity: true)
        default:
            break
        }
    }

    /// `consume` for bytes in an array.
    public mutating func consume(_ bytes: [UInt8]) throws(Failure) -> Int {
        // withUnsafeBytes rethrows untyped: carry the typed error out in a Result.
        let result = bytes.withUnsafeBytes { buffer in Result { () throws(Failure) -> Int in try consume(buffer) } }
        return try result.get()
    }

    /// The server closed its side. That completes a body that ends at close; anywhere else it
    /// throws: `closedBeforeResponse` when not a byte came, `truncated` otherwise.
    public mutating func endOfInput() throws(Failure) {
        switch state {
        case .complete:
            return
        case .untilClose:
            state = .complete
        default:
            throw started ? .truncated : .closedBeforeResponse
        }
    }

    // MARK: - Reading the pieces

    private mutating func headEnded(_ buffer: [UInt8]) throws(Failure) {
        let parsed = try Self.parseHead(buffer)
        if (100..<200).contains(parsed.status), parsed.status != 101 {
            interimResponses += 1
            state = .head // the final response follows
            return
        }
        head = parsed
        state = try bodyState(after: parsed)
    }

    /// RFC 9112 §6.3, in its order.
    private func bodyState(after head: Head) throws(Failure) -> State {
        if requestMethod == "HEAD" || head.status == 204 || head.status == 304 { return .complete }
        if head.status == 101 || (requestMethod == "CONNECT" && (200..<300).contains(head.status)) {
            return .untilClose
        }
        let codings = head.tokens("Transfer-Encoding")
        if !codings.isEmpty {
            // Transfer-Encoding wins over Content-Length; without chunked last, only the close
            // tells where the body ends.
            return codings.last == "chunked" ? .chunkSize : .untilClose
        }
        let lengths = head.values("Content-Length").flatMap { $0.split(separator: ",", omittingEmptySubsequences: false) }
        guard let first = lengths.first else { return .untilClose }
        let text = first.trimmed
        guard text.allSatisfy(\.isASCIIDigit), let length = UInt64(text),
              lengths.allSatisfy({ $0.trimmed == text }) else {
            throw .invalidContentLength(head.values("Content-Length").joined(separator: ", "))
        }
        return length == 0 ? .complete : .fixedBody(remaining: length)
    }

    private mutating func chunkSizeRead(_ text: String) throws(Failure) {
        // "1a;name=value\r\n": the size, before any extension.
        let sizeText = (text.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false).first ?? "").trimmed
        guard !sizeText.isEmpty, sizeText.allSatisfy(\.isHexDigit), sizeText.count <= 15,
              let size = UInt64(sizeText, radix: 16) else {
            throw .invalidChunkSize(text.trimmed)
        }
        state = size == 0 ? .trailers(total: 0) : .chunkData(remaining: size)
    }

    static func parseHead(_ buffer: [UInt8]) throws(Failure) -> Head {
        // Split as bytes: in a Swift String, CR LF is one Character, and would not split on LF.
        var lines = buffer.lines
        while lines.last?.isEmpty == true { lines.removeLast() }
        guard let statusLine = lines.first else { throw .malformedStatusLine("") }
        // "HTTP/1.1 200 OK": the reason may be empty, or missing with its space.
        let parts = statusLine.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/"),
              case let digits = parts[0].dropFirst(5).split(separator: "."), digits.count == 2,
              let major = UInt16(digits[0]), let minor = UInt16(digits[1]),
              parts[1].count == 3, parts[1].allSatisfy(\.isASCIIDigit), let status = Int(parts[1]) else {
            throw .malformedStatusLine(String(statusLine.prefix(200)))
        }
        var headers: [(name: String, value: String)] = []
        for line in lines.dropFirst() {
            if line.first == " " || line.first == "\t" {
                // An obsolete line folding: part of the header before it.
                guard !headers.isEmpty else { throw .malformedHeader(String(line.prefix(200))) }
                headers[headers.count - 1].value += " " + line.trimmed
                continue
            }
            guard let colon = line.firstIndex(of: ":"), colon != line.startIndex,
                  !line[..<colon].contains(where: { $0 == " " || $0 == "\t" }) else {
                throw .malformedHeader(String(line.prefix(200)))
            }
            headers.append((String(line[..<colon]), line[line.index(after: colon)...].trimmed))
        }
        return Head(version: (major, minor), status: status, headers: headers)
    }
}

extension [UInt8] {
    /// The lines, split at LF, each without its CR, as text.
    fileprivate var lines: [String] {
        split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map {
            String(decoding: $0.last == UInt8(ascii: "\r") ? $0.dropLast() : $0, as: UTF8.self)
        }
    }

    /// Ends with an empty line: CRLF CRLF, or a bare LF LF as lenient servers send.
    fileprivate var endsWithBlankLine: Bool {
        let lf = UInt8(ascii: "\n"), cr = UInt8(ascii: "\r")
        if count >= 2, self[count - 2] == lf { return true }
        return count >= 3 && self[count - 2] == cr && self[count - 3] == lf
    }
}

extension StringProtocol {
    /// Without the spaces and tabs around it.
    fileprivate var trimmed: String {
        let blank: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" }
        guard let first = firstIndex(where: { !blank($0) }), let last = lastIndex(where: { !blank($0) }) else { return "" }
        return String(self[first...last])
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}
