import CynicRuntime
import CynicTestSupport
import Foundation
import Testing

/// One row of docs/failures.md's "Handshake faults": a TLS fault plugin and what each client says.
struct TLSFaultRow: CustomStringConvertible, Sendable {
    var name: String
    var variant: String? = nil
    var parameters: [String: String] = [:]
    /// `curl -sS https://...`: exit code and a piece of its message.
    var curl: (exit: Int32, message: String)
    /// `requests.get(URL, timeout=2)`: the exception's class name and a piece of its text.
    var requests: (exception: String, reason: String)
    /// Python's `ssl` wrapping a socket with a 2 s timeout: the exception's class name and a piece of its text.
    var ssl: (exception: String, reason: String)
    /// `openssl s_client -verify_return_error`: a piece of its error output, or "hangs".
    var openssl: String

    var description: String { variant.map { "\(name) \($0)" } ?? name }
    var documentKey: String { "`\(name)`" + (variant.map { " `\($0)`" } ?? "") }
}

/// `requests.get` with a timeout: the exception's class name, then its text, on two lines.
let tlsRequestsProbe = """
    import sys, requests
    try:
        print(requests.get(sys.argv[1], timeout=2).status_code)
    except Exception as error:
        print(type(error).__name__)
        print(error)
    """

/// The standard `ssl` module's handshake, with a 2 s timeout: "connected" or the error's class and text.
let tlsSSLProbe = """
    import socket, ssl, sys
    sock = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2)
    try:
        ssl.create_default_context().wrap_socket(sock, server_hostname="localhost")
        print("connected")
    except Exception as error:
        print(type(error).__name__)
        print(error)
    """

@Suite("TLS handshake faults, as clients see them")
struct TLSHandshakeFaultTests {
    static let rows: [TLSFaultRow] = [
        // curl counts the handshake as connecting: its message is not --max-time's usual one.
        TLSFaultRow(name: "tls-hang", curl: (28, "Connection timed out after"),
                    requests: ("ReadTimeout", "Read timed out."), ssl: ("TimeoutError", "The handshake operation timed out"),
                    openssl: "hangs"),
        TLSFaultRow(name: "tls-alert", curl: (35, "sslv3 alert handshake failure"),
                    requests: ("SSLError", "[SSL: SSLV3_ALERT_HANDSHAKE_FAILURE] sslv3 alert handshake failure"),
                    ssl: ("SSLError", "[SSL: SSLV3_ALERT_HANDSHAKE_FAILURE] sslv3 alert handshake failure"),
                    openssl: "sslv3 alert handshake failure"),
        TLSFaultRow(name: "tls-alert", variant: "alert=protocol_version", parameters: ["alert": "protocol_version"],
                    curl: (35, "tlsv1 alert protocol version"),
                    requests: ("SSLError", "[SSL: TLSV1_ALERT_PROTOCOL_VERSION] tlsv1 alert protocol version"),
                    ssl: ("SSLError", "[SSL: TLSV1_ALERT_PROTOCOL_VERSION] tlsv1 alert protocol version"),
                    openssl: "tlsv1 alert protocol version"),
        TLSFaultRow(name: "tls-plaintext", curl: (35, "wrong version number"),
                    requests: ("SSLError", "[SSL: WRONG_VERSION_NUMBER] wrong version number"),
                    ssl: ("SSLError", "[SSL: WRONG_VERSION_NUMBER] wrong version number"), openssl: "wrong version number"),
        TLSFaultRow(name: "tls-reset", curl: (35, "Recv failure: Connection reset by peer"),
                    requests: ("ConnectionError", "Connection reset by peer"),
                    ssl: ("ConnectionResetError", "[Errno 104] Connection reset by peer"), openssl: "write:errno=104"),
        TLSFaultRow(name: "tls-truncated", curl: (35, "SSL_ERROR_SYSCALL"),
                    requests: ("SSLError", "[SSL: UNEXPECTED_EOF_WHILE_READING] EOF occurred in violation of protocol"),
                    ssl: ("SSLEOFError", "[SSL: UNEXPECTED_EOF_WHILE_READING] EOF occurred in violation of protocol"),
                    openssl: "unexpected eof while reading"),
    ]

    /// The rows of docs/failures.md's "### Handshake faults" table.
    static var documentRows: [String] { CatalogueTests.tableRows(under: "### Handshake faults") }

    @Test("the table has a row for each of these, and no other")
    func table() {
        let keys = Self.documentRows.compactMap { line in
            line.split(separator: "|").first.map { $0.trimmingCharacters(in: .whitespaces) }
        }
        #expect(keys == Self.rows.map(\.documentKey))
    }

    @Test("what the page says is what curl, requests, ssl and openssl s_client see", arguments: rows)
    func row(_ row: TLSFaultRow) async throws {
        let line = try #require(Self.documentRows.first { $0.hasPrefix("| \(row.documentKey) |") },
                                "no row for \(row) under Handshake faults in docs/failures.md")
        let cells = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
        let (curlCell, requestsCell, sslCell, opensslCell) = (cells[cells.count - 4], cells[cells.count - 3],
                                                               cells[cells.count - 2], cells[cells.count - 1])
        #expect(curlCell.contains("exit \(row.curl.exit)") && curlCell.contains("`\(row.curl.message)`"), "\(row): '\(curlCell)'")
        let clientCells: [(cell: String, exception: String, reason: String)] =
            [(requestsCell, row.requests.exception, row.requests.reason), (sslCell, row.ssl.exception, row.ssl.reason)]
        for (cell, exception, reason) in clientCells {
            #expect(cell.hasPrefix("`\(exception)`") && cell.contains("`\(reason)`"), "\(row): '\(cell)'")
        }
        #expect(row.openssl == "hangs" ? opensslCell.hasPrefix("hangs") : opensslCell.contains("`\(row.openssl)`"),
                "\(row): '\(opensslCell)'")

        let service = try await TestServices.start(row.name, parameters: row.parameters)
        defer { Task { await service.stop() } }
        let port = service.port, url = "https://127.0.0.1:\(service.port)/"
        let seen = try await offThePool { try TLSClients.run(port: port, url: url, hangs: row.openssl == "hangs") }

        #expect(seen.curl.status == row.curl.exit, "\(row): curl exit \(seen.curl.status): \(seen.curl.standardError)")
        #expect(seen.curl.standardError.contains(row.curl.message), "\(row): \(seen.curl.standardError)")
        #expect(seen.requests.first == row.requests.exception, "\(row): \(seen.requests)")
        #expect(seen.requests.dropFirst().joined().contains(row.requests.reason), "\(row): \(seen.requests)")
        #expect(seen.ssl.first == row.ssl.exception, "\(row): \(seen.ssl)")
        #expect(seen.ssl.dropFirst().joined().contains(row.ssl.reason), "\(row): \(seen.ssl)")
        if row.openssl == "hangs" {
            #expect(seen.openssl == nil, "\(row): openssl s_client returned: \(seen.openssl?.output ?? "")")
        } else {
            #expect(seen.openssl?.output.contains(row.openssl) == true, "\(row): \(seen.openssl?.output ?? "hangs")")
        }
    }

    @Test("tls-alert refuses an unknown alert in one line naming the alerts; takes a number")
    func unknownAlert() async throws {
        let error = await #expect(throws: (any Error).self) {
            _ = try await TestServices.start("tls-alert", parameters: ["alert": "no_such_alert"])
        }
        let message = error.map { "\($0)" } ?? ""
        #expect(message.contains("unknown alert \"no_such_alert\": use a number 0-255 or one of close_notify, "), "\(message)")
        #expect(message.contains("certificate_required, no_application_protocol"), "\(message)")
        #expect(!message.contains("\n"), "\(message)")
        let service = try await TestServices.start("tls-alert", parameters: ["alert": "112"])
        await service.stop()
    }
}

/// What the plugins put on the wire, seen by a plain socket that sends a ClientHello of its own.
@Suite("TLS handshake faults on the wire")
struct TLSHandshakeFaultWireTests {
    /// Connects to a fresh service of `behaviour`, sends `bytes`, and returns everything until EOF,
    /// with the seconds from the connect to the end.
    static func answer(_ behaviour: String, parameters: [String: String] = [:], to bytes: [UInt8]) async throws
        -> (bytes: [UInt8], end: SocketClient.Received, seconds: Double) {
        let service = try await TestServices.start(behaviour, parameters: parameters)
        defer { Task { await service.stop() } }
        let port = service.port
        return try await offThePool {
            let started = Date()
            let client = try SocketClient(port: port)
            client.send(bytes)
            let (received, end) = client.receiveAll(timeout: 10)
            return (received, end, Date().timeIntervalSince(started))
        }
    }

    @Test("tls-alert: one alert record in the version the client offered, then FIN",
          arguments: [(0x0303, "handshake_failure", [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]),
                      (0x0301, "unrecognized_name", [0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x70]),
                      (0x0303, "close_notify", [0x15, 0x03, 0x03, 0x00, 0x02, 0x01, 0x00]),
                      (0x0303, "255", [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0xff])] as [(Int, String, [UInt8])])
    func alert(version: Int, alert: String, record: [UInt8]) async throws {
        let hello = ClientHelloBytes.records(ClientHelloBytes.message(version: version))
        let seen = try await Self.answer("tls-alert", parameters: ["alert": alert], to: hello)
        #expect(seen.bytes == record)
        #expect(seen.end == .endOfFile)
    }

    @Test("tls-truncated: the ServerHello announces its length, echoes the session id, picks the first real suite")
    func truncatedServerHello() async throws {
        let sessionID = Array(UInt8(100)..<132)
        let hello = ClientHelloBytes.records(ClientHelloBytes.message(sessionID: sessionID, suites: [0x3a3a, 0x1301, 0xc02b]))
        let seen = try await Self.answer("tls-truncated", parameters: ["bytes": "78"], to: hello)
        // 79 bytes in all: the record header (74 to come), ServerHello (70), 3.3, the random...
        #expect(Array(seen.bytes.prefix(11)) == [0x16, 0x03, 0x03, 0x00, 0x4a, 0x02, 0x00, 0x00, 0x46, 0x03, 0x03])
        #expect(seen.bytes.count == 78)
        // ...the session id, and the suite; the compression method is the byte left out.
        #expect(seen.bytes.count == 78 && seen.bytes[43] == 32 && Array(seen.bytes[44..<76]) == sessionID)
        #expect(Array(seen.bytes.suffix(2)) == [0x13, 0x01])
        #expect(seen.end == .endOfFile)

        let half = try await Self.answer("tls-truncated", to: ClientHelloBytes.records(ClientHelloBytes.message(sessionID: [])))
        #expect(half.bytes.count == 47 / 2, "half of a record with no session id")
    }

    @Test("tls-reset waits for the whole ClientHello, however it is cut, then resets")
    func resetAfterWholeHello() async throws {
        let service = try await TestServices.start("tls-reset")
        defer { Task { await service.stop() } }
        let port = service.port
        let hello = ClientHelloBytes.records(ClientHelloBytes.message(padding: 3000), size: 1000)
        try await offThePool {
            let client = try SocketClient(port: port)
            for piece in [Array(hello[..<3]), Array(hello[3..<1500]), Array(hello[1500..<(hello.count - 1)])] {
                client.send(piece)
                #expect(client.receive(timeout: 0.3) == .timedOut, "answered before the ClientHello was whole")
            }
            client.send([hello.last!])
            #expect(client.receive(timeout: 10) == .failed(errno: ECONNRESET))
        }
    }

    @Test("first bytes that are not TLS: each fault acts at once", arguments: [
        ("tls-reset", nil), ("tls-alert", [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]),
    ] as [(String, [UInt8]?)])
    func plainHTTP(behaviour: String, expected: [UInt8]?) async throws {
        let seen = try await Self.answer(behaviour, to: Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        if let expected {
            #expect(seen.bytes == expected)
            #expect(seen.end == .endOfFile)
        } else {
            #expect(seen.end == .failed(errno: ECONNRESET))
        }
    }

    @Test("tls-plaintext answers a ClientHello with a whole HTTP 400 and Connection: close")
    func plaintext() async throws {
        let seen = try await Self.answer("tls-plaintext", to: ClientHelloBytes.records(ClientHelloBytes.message()))
        let text = String(decoding: seen.bytes, as: UTF8.self)
        #expect(text.hasPrefix("HTTP/1.1 400 Bad Request\r\n"))
        #expect(text.contains("\r\nConnection: close\r\n"))
        let parts = text.components(separatedBy: "\r\n\r\n")
        #expect(parts.count == 2 && text.contains("Content-Length: \(parts[1].utf8.count)\r\n"), "\(text)")
        #expect(seen.end == .endOfFile)
    }

    @Test("tls-hang holds the connection, silent, for hold_ms, then closes")
    func hangHolds() async throws {
        let seen = try await Self.answer("tls-hang", parameters: ["hold_ms": "500"],
                                         to: ClientHelloBytes.records(ClientHelloBytes.message()))
        #expect(seen.bytes.isEmpty)
        #expect(seen.end == .endOfFile)
        #expect(seen.seconds >= 0.45 && seen.seconds < 8, "\(seen.seconds) s")
    }
}

/// The four clients against one port, each bounded in time.
enum TLSClients {
    struct Seen: Sendable {
        var curl: ProgramResult
        /// The probes' lines: the exception's class name, then its text.
        var requests: [String]
        var ssl: [String]
        /// nil when it had not returned after 4 s.
        var openssl: ProgramResult?
    }

    static func run(port: Int, url: String, hangs: Bool) throws -> Seen {
        let curl = try runProgram("curl", ["-sS", "-o", "/dev/null", "--max-time", hangs ? "2" : "20", url], timeout: 30)
        let lines = { (result: ProgramResult) in result.output.split(separator: "\n").map(String.init) }
        let requests = lines(try runPython(tlsRequestsProbe, [url], timeout: 30))
        let ssl = lines(try runPython(tlsSSLProbe, [String(port)], timeout: 30))
        var openssl: ProgramResult?
        do {
            openssl = try runProgram("openssl", ["s_client", "-connect", "127.0.0.1:\(port)", "-verify_return_error"],
                                     input: "", timeout: hangs ? 4 : 30)
        } catch is ProgramTimedOut {
            openssl = nil
        }
        return Seen(curl: curl, requests: requests, ssl: ssl, openssl: openssl)
    }
}
