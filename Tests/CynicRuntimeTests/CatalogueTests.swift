import CynicRuntime
import CynicTestSupport
import Foundation
import Testing

/// One row of docs/failures.md: the service it describes and what each client must see.
struct CatalogueRow: CustomStringConvertible, Sendable {
    var name: String
    /// A mode of the plugin with a row of its own ("mode=per-chunk"): the row's first cell is
    /// `` `name` `variant` ``.
    var variant: String? = nil
    var behaviour: String
    var parameters: [String: String] = [:]
    var shapers: [String] = []
    /// curl's arguments besides `-sS URL`.
    var curlArguments: [String] = []
    /// The exit codes curl may give (two where the outcome is a race) and a message of each.
    var curl: [(exit: Int32, message: String)]
    /// What `requests` gives: "200" or an exception's class name, or "hangs".
    var withTimeout: String
    var withoutTimeout: String
    /// The Python call; URL and TIMEOUT are filled in.
    var call = "requests.get(URL, timeout=TIMEOUT)"

    var description: String { variant.map { "\(name) \($0)" } ?? name }

    /// How the row's first cell starts on the page.
    var documentKey: String { "`\(name)`" + (variant.map { " `\($0)`" } ?? "") }
}

/// The Python side: prints the status code, or the name of the exception that came out.
let requestsProbe = """
    import http.client, sys, time, requests
    URL, TIMEOUT = sys.argv[1], (None if sys.argv[2] == "none" else float(sys.argv[2]))
    try:
        result = CALL
        print(getattr(result, "status_code", getattr(result, "status", result)))
    except Exception as error:
        print(type(error).__name__)
    """

@Suite("The failure catalogue, as clients see it")
struct CatalogueTests {
    static let rows: [CatalogueRow] = [
        CatalogueRow(name: "http-html", behaviour: "http-html", curl: [(0, "")], withTimeout: "200", withoutTimeout: "200"),
        CatalogueRow(name: "http-json", behaviour: "http-json", curl: [(0, "")], withTimeout: "200", withoutTimeout: "200"),
        CatalogueRow(name: "http-nobody", behaviour: "http-nobody",
                     curl: [(18, "transfer closed with 13 bytes remaining to read")],
                     withTimeout: "ChunkedEncodingError", withoutTimeout: "ChunkedEncodingError"),
        CatalogueRow(name: "http-slow", behaviour: "http-slow", curlArguments: ["--max-time", "2"],
                     curl: [(28, "Operation timed out")], withTimeout: "ConnectionError", withoutTimeout: "hangs"),
        CatalogueRow(name: "truncated", behaviour: "truncated",
                     curl: [(18, "transfer closed with 990 bytes remaining to read")],
                     withTimeout: "ChunkedEncodingError", withoutTimeout: "ChunkedEncodingError"),
        CatalogueRow(name: "chunked-malformed", behaviour: "chunked-malformed",
                     curl: [(56, "Illegal or missing hexadecimal sequence in chunked-encoding")],
                     withTimeout: "ChunkedEncodingError", withoutTimeout: "ChunkedEncodingError"),
        CatalogueRow(name: "garbage-http", behaviour: "garbage-http",
                     curl: [(1, "Unsupported HTTP version in response")],
                     withTimeout: "ConnectionError", withoutTimeout: "ConnectionError"),
        CatalogueRow(name: "huge", behaviour: "huge", parameters: ["size": "10485760"],
                     curl: [(0, "")], withTimeout: "200", withoutTimeout: "200"),
        CatalogueRow(name: "mislabelled", behaviour: "mislabelled", curl: [(0, "")],
                     withTimeout: "JSONDecodeError", withoutTimeout: "JSONDecodeError",
                     call: "requests.get(URL, timeout=TIMEOUT).json()"),
        CatalogueRow(name: "status", behaviour: "status", curlArguments: ["-f"],
                     curl: [(22, "The requested URL returned error: 503")],
                     withTimeout: "HTTPError", withoutTimeout: "HTTPError",
                     call: "requests.get(URL, timeout=TIMEOUT).raise_for_status()"),
        CatalogueRow(name: "redirect-loop", behaviour: "redirect-loop", curlArguments: ["-L"],
                     curl: [(47, "Maximum (50) redirects followed")],
                     withTimeout: "TooManyRedirects", withoutTimeout: "TooManyRedirects"),
        // With a timeout: a Session reusing the idle connection after idle_ms. Without: plain
        // http.client doing the same, which does not look before it reuses.
        CatalogueRow(name: "keepalive-race", behaviour: "keepalive-race", curl: [(0, "")],
                     withTimeout: "200", withoutTimeout: "RemoteDisconnected",
                     call: """
                     (lambda s: (s.get(URL, timeout=TIMEOUT), time.sleep(1.0), s.get(URL, timeout=TIMEOUT))[2])(requests.Session()) \
                     if TIMEOUT else (lambda c: (c.request("GET", "/"), c.getresponse().read(), time.sleep(1.0), \
                     c.request("GET", "/"), c.getresponse())[4])(http.client.HTTPConnection(URL.split("/")[2]))
                     """),
        CatalogueRow(name: "drip", behaviour: "drip", parameters: ["size": "5", "interval_ms": "600"],
                     curlArguments: ["--max-time", "2"], curl: [(28, "Operation timed out")],
                     withTimeout: "200", withoutTimeout: "200"),
        CatalogueRow(name: "empty", behaviour: "empty", curl: [(52, "Empty reply from server")],
                     withTimeout: "ConnectionError", withoutTimeout: "ConnectionError"),
        CatalogueRow(name: "reset", behaviour: "reset", curl: [(56, "Connection reset by peer")],
                     withTimeout: "ConnectionError", withoutTimeout: "ConnectionError"),
        CatalogueRow(name: "random", behaviour: "random", curl: [(1, "Received HTTP/0.9 when not allowed")],
                     withTimeout: "ConnectionError", withoutTimeout: "ConnectionError"),
        CatalogueRow(name: "noresponse", behaviour: "noresponse", curlArguments: ["--max-time", "2"],
                     curl: [(28, "Operation timed out")], withTimeout: "ReadTimeout", withoutTimeout: "hangs"),
        CatalogueRow(name: "accept-close", behaviour: "accept-close",
                     curl: [(52, "Empty reply from server"), (56, "Connection reset by peer")],
                     withTimeout: "ConnectionError", withoutTimeout: "ConnectionError"),
        CatalogueRow(name: "never-accept", behaviour: "never-accept", curlArguments: ["--connect-timeout", "2"],
                     curl: [(28, "Timeout was reached")], withTimeout: "ConnectTimeout", withoutTimeout: "hangs"),
        CatalogueRow(name: "zero-window", behaviour: "zero-window",
                     curlArguments: ["--max-time", "2", "-T", Paths.cynic],
                     curl: [(28, "Operation timed out")], withTimeout: "ConnectionError", withoutTimeout: "hangs",
                     call: "requests.post(URL, data=b'x' * (32 << 20), timeout=TIMEOUT)"),
        // In front of a real server: here in front of none, port 1 (tcpmux) where nothing listens,
        // so each row shows its failure alone.
        CatalogueRow(name: "proxy", behaviour: "proxy", parameters: ["upstream": "127.0.0.1:1"],
                     curl: [(52, "Empty reply from server")], withTimeout: "ConnectionError", withoutTimeout: "ConnectionError"),
        CatalogueRow(name: "http-proxy", behaviour: "http-proxy", parameters: ["upstream": "127.0.0.1:1", "fail": "every:1"],
                     curlArguments: ["-f"], curl: [(22, "The requested URL returned error: 503")],
                     withTimeout: "HTTPError", withoutTimeout: "HTTPError",
                     call: "requests.get(URL, timeout=TIMEOUT).raise_for_status()"),
        CatalogueRow(name: "proxy", variant: "unreachable=reset", behaviour: "proxy",
                     parameters: ["upstream": "127.0.0.1:1", "unreachable": "reset"],
                     curl: [(56, "Connection reset by peer")], withTimeout: "ConnectionError", withoutTimeout: "ConnectionError"),
        CatalogueRow(name: "proxy", variant: "unreachable=hang", behaviour: "proxy",
                     parameters: ["upstream": "127.0.0.1:1", "unreachable": "hang"], curlArguments: ["--max-time", "2"],
                     curl: [(28, "Operation timed out")], withTimeout: "ReadTimeout", withoutTimeout: "hangs"),
        CatalogueRow(name: "http-proxy", variant: "with=reset", behaviour: "http-proxy",
                     parameters: ["upstream": "127.0.0.1:1", "fail": "every:1", "with": "reset"],
                     curl: [(56, "Connection reset by peer")], withTimeout: "ConnectionError", withoutTimeout: "ConnectionError"),
        CatalogueRow(name: "http-proxy", variant: "with=close", behaviour: "http-proxy",
                     parameters: ["upstream": "127.0.0.1:1", "fail": "every:1", "with": "close"],
                     curl: [(52, "Empty reply from server")], withTimeout: "ConnectionError", withoutTimeout: "ConnectionError"),
        CatalogueRow(name: "http-proxy", variant: "upstream down", behaviour: "http-proxy", parameters: ["upstream": "127.0.0.1:1"],
                     curlArguments: ["-f"], curl: [(22, "The requested URL returned error: 502")],
                     withTimeout: "502", withoutTimeout: "502"),
        // Shapers, each on the service its row names.
        CatalogueRow(name: "latency", behaviour: "http-json", shapers: ["latency:ms=3000"],
                     curlArguments: ["--max-time", "2"], curl: [(28, "Operation timed out")],
                     withTimeout: "ReadTimeout", withoutTimeout: "200"),
        CatalogueRow(name: "latency", variant: "mode=per-chunk", behaviour: "drip",
                     parameters: ["size": "3", "interval_ms": "500"], shapers: ["latency:ms=1500,mode=per-chunk"],
                     curlArguments: ["--max-time", "2"], curl: [(28, "Operation timed out")],
                     withTimeout: "200", withoutTimeout: "200"),
        CatalogueRow(name: "bandwidth", behaviour: "huge", parameters: ["size": "3000"],
                     shapers: ["bandwidth:bytes_per_second=1000"], curlArguments: ["--max-time", "2"],
                     curl: [(28, "Operation timed out")], withTimeout: "200", withoutTimeout: "200"),
        CatalogueRow(name: "bandwidth", variant: "shared=true", behaviour: "huge", parameters: ["size": "3000"],
                     shapers: ["bandwidth:bytes_per_second=1000,shared=true"], curlArguments: ["--max-time", "2"],
                     curl: [(28, "Operation timed out")], withTimeout: "200", withoutTimeout: "200"),
        CatalogueRow(name: "slicer", behaviour: "http-json", shapers: ["slicer:size=1,delay_ms=5"],
                     curl: [(0, "")], withTimeout: "200", withoutTimeout: "200"),
        CatalogueRow(name: "limit", behaviour: "http-html", shapers: ["limit:bytes=100"],
                     curl: [(18, "transfer closed with 122 bytes remaining to read")],
                     withTimeout: "ChunkedEncodingError", withoutTimeout: "ChunkedEncodingError"),
        CatalogueRow(name: "reset-after", behaviour: "http-slow", parameters: ["interval_ms": "100"],
                     shapers: ["reset-after:ms=500"], curl: [(56, "Connection reset by peer")],
                     withTimeout: "ChunkedEncodingError", withoutTimeout: "ChunkedEncodingError"),
        CatalogueRow(name: "slow-close", behaviour: "http-html", shapers: ["slow-close:ms=3000"],
                     curl: [(0, "")], withTimeout: "200", withoutTimeout: "200"),
        CatalogueRow(name: "timeout", behaviour: "http-json", shapers: ["timeout"],
                     curlArguments: ["--max-time", "2"], curl: [(28, "Operation timed out")],
                     withTimeout: "ReadTimeout", withoutTimeout: "hangs"),
        CatalogueRow(name: "timeout", variant: "ms=1000", behaviour: "http-json", shapers: ["timeout:ms=1000"],
                     curl: [(52, "Empty reply from server")], withTimeout: "ConnectionError", withoutTimeout: "ConnectionError"),
    ]

    static let document = try! String(contentsOfFile: Paths.repository + "/docs/failures.md", encoding: .utf8)

    /// The table row of docs/failures.md whose first cell is `key`.
    static func documentRow(_ key: String) -> String? {
        document.split(separator: "\n").first { $0.hasPrefix("| \(key) |") }.map(String.init)
    }

    /// The table rows of the page under `heading`, up to the next heading.
    static func tableRows(under heading: String) -> [String] {
        var rows: [String] = []
        var inside = false
        for line in document.split(separator: "\n") {
            if line.hasPrefix("#") { inside = line == heading }
            if inside, line.hasPrefix("| `") { rows.append(String(line)) }
        }
        return rows
    }

    /// The table rows that describe plugins: all but the certificate profiles' (their first cell is
    /// a profile, not a plugin).
    static var pluginRows: [Substring] {
        let profiles = Set(tableRows(under: "### Certificate profiles"))
        return document.split(separator: "\n").filter { $0.hasPrefix("| `") && !profiles.contains(String($0)) }
    }

    @Test("every behaviour and shaper shipped has a row, and every row a plugin")
    func complete() throws {
        let shipped = Set(TestServices.shipped.plugins.keys)
        let documented = Set(Self.pluginRows.compactMap { line -> String? in
            guard let end = line.dropFirst(3).firstIndex(of: "`") else { return nil }
            return String(line[line.index(line.startIndex, offsetBy: 3)..<end])
        })
        #expect(documented == shipped)
        // The TLS handshake faults' rows are checked by their own test, with TLS clients.
        #expect(Set(Self.rows.map(\.name)).union(TLSHandshakeFaultTests.rows.map(\.name)) == shipped)
        #expect(Set(Self.rows.map(\.name)).isDisjoint(with: TLSHandshakeFaultTests.rows.map(\.name)))
    }

    @Test("what the page says is what curl and requests see", .enabled(if: programExists("curl")),
          arguments: rows)
    func row(_ row: CatalogueRow) async throws {
        let line = try #require(Self.documentRow(row.documentKey), "no row for \(row) in docs/failures.md")
        // The page says it...
        let cells = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
        let (curlCell, timeoutCell, noTimeoutCell) = (cells[cells.count - 3], cells[cells.count - 2], cells[cells.count - 1])
        for (exit, message) in row.curl {
            #expect(curlCell.contains("exit \(exit)"), "\(row.name): curl cell '\(curlCell)'")
            if !message.isEmpty { #expect(curlCell.contains("`\(message)`"), "\(row.name): curl cell '\(curlCell)'") }
        }
        #expect(timeoutCell.hasPrefix(row.withTimeout == "hangs" ? "hangs" : "`\(row.withTimeout)`"), "\(row.name): '\(timeoutCell)'")
        #expect(noTimeoutCell.hasPrefix(row.withoutTimeout == "hangs" ? "hangs" : "`\(row.withoutTimeout)`"), "\(row.name): '\(noTimeoutCell)'")

        // ...and the clients see it.
        let service = try await TestServices.start(row.behaviour, parameters: row.parameters, shapers: row.shapers)
        defer { Task { await service.stop() } }
        let url = "http://127.0.0.1:\(service.port)/"
        let curl = try await offThePool { try runProgram("curl", ["-sS", "-o", "/dev/null"] + row.curlArguments + [url], timeout: 30) }
        let expected = row.curl.first { $0.exit == curl.status }
        #expect(expected != nil, "\(row.name): curl exit \(curl.status): \(curl.standardError)")
        if let expected, !expected.message.isEmpty {
            #expect(curl.standardError.contains(expected.message), "\(row.name): \(curl.standardError)")
        }
        for (timeout, outcome) in [("2", row.withTimeout), ("none", row.withoutTimeout)] {
            let script = requestsProbe.replacingOccurrences(of: "CALL", with: row.call)
            let seen: String = try await offThePool {
                do {
                    // A call that has not returned after 4 s (every row's client is done by
                    // then, or waits forever) hangs.
                    return try runPython(script, [url, timeout], timeout: outcome == "hangs" ? 4 : 30)
                        .output.trimmingCharacters(in: .whitespacesAndNewlines)
                } catch is ProgramTimedOut {
                    return "hangs"
                }
            }
            #expect(seen == outcome, "\(row.name), timeout \(timeout): \(seen)")
        }
    }
}
