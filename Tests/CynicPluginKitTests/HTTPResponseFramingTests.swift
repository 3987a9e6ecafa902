import CynicPluginKit
import Testing

/// A response fed in pieces: how many bytes the framing took, whether it saw the end, and how
/// the server's close would go.
private struct Fed {
    var used = 0
    var complete = false
    var framing: HTTPResponseFraming
}

/// Feeds `bytes` cut at `cuts` (offsets, ascending), stopping once the response is complete.
private func feed(_ bytes: [UInt8], method: String = "GET", cuts: [Int]) throws(HTTPResponseFraming.Failure) -> Fed {
    var fed = Fed(framing: HTTPResponseFraming(requestMethod: method))
    var start = 0
    for end in cuts + [bytes.count] where end >= start {
        let used = try fed.framing.consume(Array(bytes[start..<end]))
        fed.used += used
        if fed.framing.isComplete {
            fed.complete = true
            return fed
        }
        #expect(used == end - start, "an incomplete response takes every byte")
        start = end
    }
    return fed
}

/// Every way to cut `bytes` in two, plus one byte at a time.
private func everySplit(_ bytes: [UInt8]) -> [[Int]] {
    (0...bytes.count).map { [$0] } + [Array(1..<max(bytes.count, 1))]
}

private func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

@Suite("HTTPResponseFraming: where a response ends, however its bytes are split")
struct HTTPResponseFramingTests {
    static let contentLength = bytes("HTTP/1.1 200 OK\r\nContent-Length: 11\r\nContent-Type: text/plain\r\n\r\nhello world")
    static let chunked = bytes("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                               + "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: yes\r\n\r\n")

    @Test("Content-Length: complete after exactly its bytes, at every split")
    func contentLength() throws {
        let next = bytes("HTTP/1.1 200 OK\r\n") // the next response, pipelined: not this one's
        for cuts in everySplit(Self.contentLength) {
            let fed = try feed(Self.contentLength + next, cuts: cuts)
            #expect(fed.complete, "\(cuts)")
            #expect(fed.used == Self.contentLength.count, "\(cuts)")
            #expect(fed.framing.head?.status == 200)
            #expect(fed.framing.head?.values("content-type") == ["text/plain"])
            #expect(fed.framing.keepAlive)
        }
    }

    @Test("chunked, with an extension and trailers: complete after the trailers' blank line, at every split")
    func chunked() throws {
        for cuts in everySplit(Self.chunked) {
            let fed = try feed(Self.chunked + bytes("junk"), cuts: cuts)
            #expect(fed.complete, "\(cuts)")
            #expect(fed.used == Self.chunked.count, "\(cuts)")
        }
        // Cut just before the last byte: not complete yet.
        var framing = HTTPResponseFraming(requestMethod: "GET")
        #expect(try framing.consume(Array(Self.chunked.dropLast())) == Self.chunked.count - 1)
        #expect(!framing.isComplete)
        #expect(throws: HTTPResponseFraming.Failure.truncated) { try framing.endOfInput() }
    }

    @Test("Transfer-Encoding wins over Content-Length")
    func transferEncodingWins() throws {
        let response = bytes("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
        let fed = try feed(response, cuts: [])
        #expect(fed.complete && fed.used == response.count)
    }

    @Test("no body: HEAD (whatever its Content-Length), 204, 304, Content-Length: 0", arguments: [
        ("HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"),
        ("GET", "HTTP/1.1 204 No Content\r\n\r\n"),
        ("GET", "HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n"),
        ("POST", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
    ])
    func noBody(method: String, head: String) throws {
        let response = bytes(head)
        for cuts in everySplit(response) {
            let fed = try feed(response + bytes("extra"), method: method, cuts: cuts)
            #expect(fed.complete, "\(cuts)")
            #expect(fed.used == response.count, "\(cuts)")
        }
    }

    @Test("100 Continue, then the final response: both are part of the exchange")
    func interim() throws {
        let response = bytes("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok")
        for cuts in everySplit(response) {
            let fed = try feed(response, cuts: cuts)
            #expect(fed.complete && fed.used == response.count, "\(cuts)")
            #expect(fed.framing.head?.status == 201)
            #expect(fed.framing.interimResponses == 1)
        }
    }

    @Test("neither length nor chunked: the body runs until the server closes; so does a 101's tunnel")
    func closeDelimited() throws {
        for head in ["HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n",
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
                     "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"] {
            var framing = HTTPResponseFraming(requestMethod: "GET")
            let response = bytes(head + "any bytes at all, 0\r\n\r\n")
            #expect(try framing.consume(response) == response.count)
            #expect(try framing.consume(bytes("more")) == 4)
            #expect(!framing.isComplete)
            #expect(framing.endsAtClose)
            #expect(!framing.keepAlive, "the client learns the end from the close")
            try framing.endOfInput()
            #expect(framing.isComplete)
        }
    }

    @Test("keep-alive: HTTP/1.1 unless Connection: close; HTTP/1.0 only with Connection: keep-alive", arguments: [
        ("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true),
        ("HTTP/1.1 200 OK\r\nConnection: Keep-Alive, Close\r\nContent-Length: 0\r\n\r\n", false),
        ("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false),
        ("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", true),
    ])
    func keepAlive(head: String, expected: Bool) throws {
        var framing = HTTPResponseFraming(requestMethod: "GET")
        _ = try framing.consume(bytes(head))
        #expect(framing.isComplete)
        #expect(framing.keepAlive == expected)
    }

    @Test("a close before the response, or inside it, is told apart")
    func closes() throws {
        var silent = HTTPResponseFraming(requestMethod: "GET")
        #expect(throws: HTTPResponseFraming.Failure.closedBeforeResponse) { try silent.endOfInput() }
        for cut in [1, 20, Self.contentLength.count - 1] {
            var framing = HTTPResponseFraming(requestMethod: "GET")
            _ = try framing.consume(Array(Self.contentLength[..<cut]))
            #expect(throws: HTTPResponseFraming.Failure.truncated) { try framing.endOfInput() }
        }
    }

    @Test("what cannot be framed is refused", arguments: [
        ("SSH-2.0-OpenSSH\r\n\r\n", HTTPResponseFraming.Failure.malformedStatusLine("SSH-2.0-OpenSSH")),
        ("HTTP/1.1 2000 OK\r\n\r\n", .malformedStatusLine("HTTP/1.1 2000 OK")),
        ("HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", .malformedHeader("no colon here")),
        ("HTTP/1.1 200 OK\r\nContent-Length: 12abc\r\n\r\n", .invalidContentLength("12abc")),
        ("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", .invalidContentLength("5, 6")),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", .invalidChunkSize("zz")),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX", .missingChunkEnd),
    ])
    func refused(response: String, failure: HTTPResponseFraming.Failure) {
        var framing = HTTPResponseFraming(requestMethod: "GET")
        #expect(throws: failure) { try framing.consume(bytes(response)) }
    }

    @Test("equal repeated Content-Lengths are one length; a head past the limit is refused")
    func lengthsAndLimits() throws {
        let repeated = bytes("HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\nContent-Length: 2\r\n\r\nok")
        #expect(try feed(repeated, cuts: []).used == repeated.count)
        var framing = HTTPResponseFraming(requestMethod: "GET", headLimit: 100)
        let long = bytes("HTTP/1.1 200 OK\r\nX-Long: " + String(repeating: "a", count: 200) + "\r\n\r\n")
        #expect(throws: HTTPResponseFraming.Failure.headTooLarge(limit: 100)) { try framing.consume(long) }
    }

    @Test("a stream of responses, cut at random places: each ends where it should", arguments: [1, 2, 3, 42] as [UInt64])
    func randomSplits(seed: UInt64) throws {
        let responses: [(method: String, bytes: [UInt8])] = [
            ("GET", Self.contentLength), ("GET", Self.chunked),
            ("HEAD", bytes("HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n")),
            ("GET", bytes("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc")),
            ("GET", bytes("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                          + "a\r\n0123456789\r\n1\r\nx\r\n0\r\n\r\n")),
        ]
        let stream = responses.flatMap(\.bytes)
        var random = SplitMix(state: seed)
        var pieces: [[UInt8]] = []
        var offset = 0
        while offset < stream.count {
            let length = Int(random.next() % 9) + 1
            pieces.append(Array(stream[offset..<min(stream.count, offset + length)]))
            offset += length
        }
        var ends: [Int] = []
        var position = 0
        var index = 0
        var framing = HTTPResponseFraming(requestMethod: responses[0].method)
        for var piece in pieces {
            while !piece.isEmpty {
                let used = try framing.consume(piece)
                position += used
                piece.removeFirst(used)
                if framing.isComplete {
                    ends.append(position)
                    index += 1
                    if index < responses.count { framing = HTTPResponseFraming(requestMethod: responses[index].method) }
                }
            }
        }
        var expected: [Int] = []
        var total = 0
        for response in responses {
            total += response.bytes.count
            expected.append(total)
        }
        #expect(ends == expected)
    }
}

/// A small seeded generator, so a failing split is found again.
private struct SplitMix {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
