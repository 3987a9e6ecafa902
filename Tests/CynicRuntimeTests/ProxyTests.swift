import CynicPlugins
import CynicRuntime
import CynicTestSupport
import Foundation
import Testing

/// A folder of files for an HTTP upstream: `big.bin` (200 KB of random bytes), and one-letter
/// files `a.txt`, `b.txt`, `c.txt` holding "A", "B", "C".
private func servedFolder() throws -> TemporaryFolder {
    let folder = TemporaryFolder("cynic-upstream")
    var bytes = [UInt8](repeating: 0, count: 200_000)
    for index in bytes.indices { bytes[index] = UInt8.random(in: 0...255) }
    try Data(bytes).write(to: URL(fileURLWithPath: folder.file("big.bin")))
    for letter in ["a", "b", "c"] { try folder.write("\(letter).txt", letter.uppercased()) }
    return folder
}

/// What Python's `requests` gets for a GET: status, Content-Type, Content-Length, the body's SHA-256.
private func requestsSummary(_ url: String) throws -> String {
    let result = try runPython("""
        import hashlib, requests, sys
        r = requests.get(sys.argv[1], timeout=10)
        print(r.status_code, r.headers["Content-Type"], r.headers["Content-Length"], hashlib.sha256(r.content).hexdigest())
        """, [url])
    #expect(result.status == 0, "\(result.output)")
    return result.standardOutput
}

@Suite("proxy: bytes through to a real server and back")
struct ProxyTests {
    @Test("proxy.c builds as a third-party C plugin would, with cc against the header alone, and loads")
    func buildsWithPlainCC() throws {
        let source = try String(contentsOfFile: Paths.repository + "/plugins/proxy/proxy.c", encoding: .utf8)
        let folder = TemporaryFolder("cynic-proxy-cc")
        let plugin = try Plugin.load(file: try compileCPlugin(source, named: "proxy", into: folder.path, extraFlags: ["-Wextra"]))
        #expect(plugin.name == "proxy")
        #expect(plugin.parameters.map(\.name) == ["upstream", "unreachable"])
    }

    @Test("curl and requests get through the proxy the very bytes they get directly", .enabled(if: programExists("curl")))
    func sameBytesAsDirect() async throws {
        let folder = try servedFolder()
        let upstream = try UpstreamServer.http(serving: folder)
        let service = try await TestServices.start("proxy", parameters: ["upstream": upstream.address])
        defer { Task { await service.stop() } }
        let direct = "http://127.0.0.1:\(upstream.port)/big.bin", proxied = "http://127.0.0.1:\(service.port)/big.bin"
        try await offThePool {
            let viaCurl = try runProgram("curl", ["-sS", "--max-time", "10", "-o", folder.file("proxied.bin"), proxied])
            #expect(viaCurl.status == 0, "\(viaCurl.output)")
            #expect(FileManager.default.contents(atPath: folder.file("proxied.bin")) == FileManager.default.contents(atPath: folder.file("big.bin")))
            let summary = try requestsSummary(direct)
            #expect(summary.hasPrefix("200 application/octet-stream 200000 "), "\(summary)")
            #expect(try requestsSummary(proxied) == summary)
        }
    }

    @Test("10 MB each way, at once, arrive with the same SHA-256 (an echo upstream)")
    func tenMegabytesEachWay() async throws {
        let upstream = try UpstreamServer.tcp("echo")
        let service = try await TestServices.start("proxy", parameters: ["upstream": upstream.address])
        defer { Task { await service.stop() } }
        let result = try await offThePool {
            try runPython("""
                import hashlib, os, socket, sys, threading
                s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=60)
                data = os.urandom(10 * 1024 * 1024)
                def send():
                    s.sendall(data)
                    s.shutdown(socket.SHUT_WR)
                sender = threading.Thread(target=send)
                sender.start()
                received = hashlib.sha256()
                count = 0
                while True:
                    chunk = s.recv(1 << 20)
                    if not chunk: break
                    received.update(chunk)
                    count += len(chunk)
                sender.join()
                print(count, received.hexdigest() == hashlib.sha256(data).hexdigest())
                """, [String(service.port)], timeout: 120)
        }
        #expect(result.standardOutput == "10485760 True\n", "\(result.output)")
    }

    @Test("a client's half-close reaches the upstream, which still answers; the client reads the answer, then EOF")
    func halfCloseForwarded() async throws {
        let upstream = try UpstreamServer.tcp("count")
        let service = try await TestServices.start("proxy", parameters: ["upstream": upstream.address])
        defer { Task { await service.stop() } }
        let (answer, end) = try await offThePool { () -> (String, SocketClient.Received) in
            let client = try SocketClient(port: service.port)
            client.send("hello")
            client.shutdownWrite()
            let (bytes, end) = client.receiveAll()
            return (String(decoding: bytes, as: UTF8.self), end)
        }
        #expect(answer == "received 5 bytes\n")
        #expect(end == .endOfFile)
    }

    @Test("the upstream's reset reaches the client: ECONNRESET")
    func upstreamResetForwarded() async throws {
        let upstream = try UpstreamServer.tcp("reset")
        let service = try await TestServices.start("proxy", parameters: ["upstream": upstream.address])
        defer { Task { await service.stop() } }
        let received = try await offThePool { () -> SocketClient.Received in
            let client = try SocketClient(port: service.port)
            client.send("hello")
            return client.receiveAll().end
        }
        #expect(received == .failed(errno: ECONNRESET))
    }

    @Test("the client's reset reaches the upstream as a reset; its FIN as EOF")
    func clientResetForwarded() async throws {
        let upstream = try UpstreamServer.tcp("watch")
        let service = try await TestServices.start("proxy", parameters: ["upstream": upstream.address])
        defer { Task { await service.stop() } }
        try await offThePool {
            let polite = try SocketClient(port: service.port)
            polite.send("hello")
            polite.shutdownWrite()
            #expect(polite.receiveAll().end == .endOfFile)

            do {
                let rude = try SocketClient(port: service.port)
                rude.send("hello")
                // Until the upstream has the bytes: connected, not still connecting, however loaded.
                let deadline = Date().addingTimeInterval(10)
                while upstream.logLines(startingWith: "data").count < 2, Date() < deadline { usleep(10_000) }
                var abort = linger(l_onoff: 1, l_linger: 0)
                setsockopt(rude.fd, SOL_SOCKET, SO_LINGER, &abort, socklen_t(MemoryLayout<linger>.size))
            } // released: its close, with SO_LINGER 0, is an RST (no FIN before it, unlike a shutdown)
        }
        let deadline = Date().addingTimeInterval(10)
        while upstream.logLines(startingWith: "ended").count < 2, Date() < deadline { usleep(20_000) }
        #expect(upstream.logLines(startingWith: "ended") == ["ended eof", "ended reset"], "\(upstream.log)")
    }

    @Test("a client reset at once, before its upstream has connected: the upstream still gets a reset, not a FIN")
    func immediateClientResetForwarded() async throws {
        let upstream = try UpstreamServer.tcp("watch")
        let service = try await TestServices.start("proxy", parameters: ["upstream": upstream.address])
        defer { Task { await service.stop() } }
        try await offThePool {
            for _ in 0..<5 {
                let rude = try SocketClient(port: service.port)
                var abort = linger(l_onoff: 1, l_linger: 0)
                setsockopt(rude.fd, SOL_SOCKET, SO_LINGER, &abort, socklen_t(MemoryLayout<linger>.size))
            } // each released at once: an RST while cynic is still connecting upstream
        }
        let deadline = Date().addingTimeInterval(10)
        while upstream.logLines(startingWith: "ended").count < 5, Date() < deadline { usleep(20_000) }
        #expect(upstream.logLines(startingWith: "ended") == Array(repeating: "ended reset", count: 5), "\(upstream.log)")
    }

    @Test("an unreachable upstream: the client gets what `unreachable` says", arguments: ["reset", "close", "hang"])
    func unreachable(mode: String) async throws {
        let refusing = RefusingPort()
        let service = try await TestServices.start("proxy", parameters: ["upstream": refusing.address, "unreachable": mode])
        defer { Task { await service.stop() } }
        let (first, state) = try await offThePool { () -> (SocketClient.Received, UInt8) in
            let client = try SocketClient(port: service.port)
            client.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            return (client.receive(timeout: 1.5), client.tcpState)
        }
        withExtendedLifetime(refusing) {}
        switch mode {
        case "reset": #expect(first == .failed(errno: ECONNRESET))
        case "close": #expect(first == .endOfFile)
        default:
            #expect(first == .timedOut)
            #expect(state == 1 /* TCP_ESTABLISHED */)
        }
    }

    @Test("unreachable=reset: a client that says nothing is reset after a short wait; one that speaks, at its first bytes")
    func unreachableResetWaitsForTheClient() async throws {
        let refusing = RefusingPort()
        let service = try await TestServices.start("proxy", parameters: ["upstream": refusing.address, "unreachable": "reset"])
        defer { Task { await service.stop() } }
        let port = service.port
        let (silent, silentAfter, spoken) = try await offThePool { () -> (SocketClient.Received, Double, SocketClient.Received) in
            // Silent: the reset comes on its own, after about 200 ms (never at once: an RST that
            // early races a client's connect and its request).
            let started = Date()
            let quiet = try SocketClient(port: port)
            let silent = quiet.receive(timeout: 10)
            let after = Date().timeIntervalSince(started)
            // Speaking after a pause: the reset follows its bytes, and its read fails.
            let talker = try SocketClient(port: port)
            usleep(50_000)
            talker.send("hello")
            return (silent, after, talker.receive(timeout: 10))
        }
        withExtendedLifetime(refusing) {}
        #expect(silent == .failed(errno: ECONNRESET))
        #expect(silentAfter >= 0.15, "reset after \(silentAfter) s")
        #expect(spoken == .failed(errno: ECONNRESET))
    }

    @Test("a missing or unreadable upstream, or an unknown unreachable, refuses the service", arguments: [
        ([:], "upstream: required"),
        (["upstream": "localhost"], "upstream: expected 'host:port'"),
        (["upstream": "127.0.0.1:1", "unreachable": "explode"], "unreachable: expected close, reset or hang"),
    ])
    func refusals(parameters: [String: String], message: String) async throws {
        let error = await #expect(throws: ServiceError.self) { try await TestServices.start("proxy", parameters: parameters) }
        #expect(error?.description.contains(message) == true, "\(error.map { "\($0)" } ?? "no error")")
    }
}

@Suite("http-proxy: a real HTTP server, with the requests chosen failing")
struct HTTPProxyTests {
    @Test("passes requests untouched: a file, a POST body, three requests on one keep-alive connection")
    func passesThrough() async throws {
        let folder = try servedFolder()
        let upstream = try UpstreamServer.http(serving: folder)
        let service = try await TestServices.start("http-proxy", parameters: ["upstream": upstream.address])
        defer { Task { await service.stop() } }
        try await offThePool {
            let summary = try requestsSummary("http://127.0.0.1:\(upstream.port)/big.bin")
            #expect(try requestsSummary("http://127.0.0.1:\(service.port)/big.bin") == summary)
            let result = try runPython("""
                import http.client, sys
                c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=10)
                for name in ["a", "b", "c"]:
                    c.request("GET", "/%s.txt" % name)
                    r = c.getresponse()
                    print(r.status, r.read().decode())
                c.request("POST", "/echo", body=b"x" * 100000)
                r = c.getresponse()
                print(r.status, len(r.read()))
                """, [String(service.port)])
            #expect(result.standardOutput == "200 A\n200 B\n200 C\n200 100000\n", "\(result.output)")
        }
        #expect(service.acceptedConnections == 2, "requests' connection, then http.client's one for all four")
        #expect(upstream.logLines(startingWith: "request ") == ["request GET /big.bin", "request GET /big.bin",
                                                                 "request GET /a.txt", "request GET /b.txt",
                                                                 "request GET /c.txt", "request POST /echo"])
    }

    @Test("fail=first:2: a requests Session retrying 503 three times succeeds on the third try; the upstream saw one request")
    func firstTwoFailWith503() async throws {
        let folder = try servedFolder()
        let upstream = try UpstreamServer.http(serving: folder)
        let service = try await TestServices.start("http-proxy", parameters: ["upstream": upstream.address, "fail": "first:2"])
        defer { Task { await service.stop() } }
        let result = try await offThePool {
            try runPython("""
                import requests, sys
                from requests.adapters import HTTPAdapter
                from urllib3.util.retry import Retry
                session = requests.Session()
                retries = Retry(total=3, status_forcelist=[503], backoff_factor=0)
                session.mount("http://", HTTPAdapter(max_retries=retries))
                r = session.get("http://127.0.0.1:%s/a.txt" % sys.argv[1], timeout=10)
                print(r.status_code, r.text, len(r.raw.retries.history))
                """, [String(service.port)])
        }
        #expect(result.standardOutput == "200 A 2\n", "\(result.output)")
        #expect(upstream.logLines(startingWith: "request ") == ["request GET /a.txt"])
    }

    @Test("with=status:CODE answers with that status and the Retry-After asked for", .enabled(if: programExists("curl")))
    func statusWithRetryAfter() async throws {
        let upstream = try UpstreamServer.http(serving: try servedFolder())
        let service = try await TestServices.start("http-proxy", parameters: ["upstream": upstream.address, "fail": "path:/a",
                                                                              "with": "status:429", "retry_after": "7"])
        defer { Task { await service.stop() } }
        let failed = try runProgram("curl", ["-sS", "-i", "--max-time", "10", "http://127.0.0.1:\(service.port)/a.txt"])
        #expect(failed.standardOutput.hasPrefix("HTTP/1.1 429 Too Many Requests\r\n"), "\(failed.output)")
        #expect(failed.standardOutput.contains("\r\nRetry-After: 7\r\n"))
        let passed = try runProgram("curl", ["-sS", "--max-time", "10", "http://127.0.0.1:\(service.port)/b.txt"])
        #expect(passed.standardOutput == "B")
        #expect(upstream.logLines(startingWith: "request ") == ["request GET /b.txt"])
    }

    /// Sends `count` GETs, each on a connection of its own, without retries; returns the numbers
    /// (from 1) of those that failed with a reset.
    private func resetRequests(port: Int, count: Int) throws -> [Int] {
        let result = try runPython("""
            import requests, sys
            failed = []
            for number in range(1, int(sys.argv[2]) + 1):
                try:
                    requests.get("http://127.0.0.1:%s/a.txt" % sys.argv[1], timeout=10)
                except requests.exceptions.ConnectionError as error:
                    if "reset" in str(error).lower(): failed.append(number)
                    else: print("not a reset:", error)
            print(" ".join(map(str, failed)))
            """, [String(port), String(count)], timeout: 120)
        #expect(result.status == 0, "\(result.output)")
        return result.standardOutput.split(separator: " ").compactMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    @Test("fail=every:10 with=reset: requests 10, 20 and 30 of 30 are reset; the upstream saw the other 27")
    func everyTenthReset() async throws {
        let upstream = try UpstreamServer.http(serving: try servedFolder())
        let service = try await TestServices.start("http-proxy", parameters: ["upstream": upstream.address,
                                                                              "fail": "every:10", "with": "reset"])
        defer { Task { await service.stop() } }
        let failed = try await offThePool { try self.resetRequests(port: service.port, count: 30) }
        #expect(failed == [10, 20, 30])
        #expect(upstream.logLines(startingWith: "request ").count == 27)
    }

    @Test("fail=probability:0.2 with=reset: the same seed resets the same requests; another seed, others")
    func seededProbability() async throws {
        let upstream = try UpstreamServer.http(serving: try servedFolder())
        var runs: [[Int]] = []
        for seed in ["7", "7", "8"] {
            let service = try await TestServices.start("http-proxy", parameters: ["upstream": upstream.address, "fail": "probability:0.2",
                                                                                  "with": "reset", "seed": seed])
            runs.append(try await offThePool { try self.resetRequests(port: service.port, count: 40) })
            await service.stop()
        }
        #expect(runs[0] == runs[1])
        #expect(runs[0] != runs[2])
        #expect((2...20).contains(runs[0].count), "about 8 of 40: \(runs[0])")
        #expect(upstream.logLines(startingWith: "request ").count == 120 - runs.map(\.count).reduce(0, +))
    }

    @Test("pipelined requests are answered in order, a failed one in its place (fail=nth:2)")
    func pipelinedInOrder() async throws {
        let upstream = try UpstreamServer.http(serving: try servedFolder())
        let service = try await TestServices.start("http-proxy", parameters: ["upstream": upstream.address, "fail": "nth:2"])
        defer { Task { await service.stop() } }
        let (text, end) = try await offThePool { () -> (String, SocketClient.Received) in
            let client = try SocketClient(port: service.port)
            client.send("GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\nGET /b.txt HTTP/1.1\r\nHost: x\r\n\r\n"
                        + "GET /c.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            let (bytes, end) = client.receiveAll()
            return (String(decoding: bytes, as: UTF8.self), end)
        }
        // A status line follows the body before it directly ("AHTTP/1.1 503"): split on the version.
        let statuses = text.components(separatedBy: "HTTP/1.1 ").dropFirst().map { String($0.prefix(3)) }
        #expect(statuses == ["200", "503", "200"], "\(text)")
        #expect(text.hasSuffix("\r\n\r\nC"), "\(text)")
        #expect(text.contains("\r\n\r\nA"))
        #expect(end == .endOfFile)
        #expect(upstream.logLines(startingWith: "request ") == ["request GET /a.txt", "request GET /c.txt"])
    }

    @Test("with=delay:MS holds the request, then passes it through")
    func delay() async throws {
        let upstream = try UpstreamServer.http(serving: try servedFolder())
        let service = try await TestServices.start("http-proxy", parameters: ["upstream": upstream.address, "fail": "first:1",
                                                                              "with": "delay:2000"])
        defer { Task { await service.stop() } }
        let result = try await offThePool {
            try runPython("""
                import requests, sys, time
                for _ in range(2):
                    start = time.monotonic()
                    r = requests.get("http://127.0.0.1:%s/a.txt" % sys.argv[1], timeout=10)
                    print(r.status_code, r.text, time.monotonic() - start)
                """, [String(service.port)])
        }
        let lines = result.standardOutput.split(separator: "\n").map { $0.split(separator: " ") }
        #expect(lines.map { $0.prefix(2).joined(separator: " ") } == ["200 A", "200 A"], "\(result.output)")
        // Two seconds, so that a loaded machine's slowness (0.7 s for a request was seen) is not
        // taken for the delay.
        #expect((Double(lines.first?.last ?? "") ?? 0) >= 1.99, "\(result.output)")
        #expect((Double(lines.last?.last ?? "") ?? 9) < 1.5, "only the first is delayed: \(result.output)")
    }

    @Test("an unreachable upstream: 502 Bad Gateway", .enabled(if: programExists("curl")))
    func badGateway() async throws {
        let refusing = RefusingPort()
        let service = try await TestServices.start("http-proxy", parameters: ["upstream": refusing.address])
        defer { Task { await service.stop() } }
        let result = try runProgram("curl", ["-sS", "-i", "--max-time", "10", "http://127.0.0.1:\(service.port)/"])
        #expect(result.standardOutput.hasPrefix("HTTP/1.1 502 Bad Gateway\r\n"), "\(result.output)")
        withExtendedLifetime(refusing) {}
    }

    @Test("parameters that do not parse refuse the service, naming the fix", arguments: [
        (["fail": "first:0"], "fail=first:0: first takes a count of at least 1"),
        (["fail": "sometimes"], "fail=sometimes: expected none, first:N"),
        (["fail": "probability:2"], "probability takes a number from 0 to 1"),
        (["with": "status:42"], "with=status:42: a status from 200 to 599"),
        (["with": "explode"], "with=explode: expected status:CODE, reset, close or delay:MS"),
    ])
    func refusals(parameters: [String: String], message: String) async throws {
        let error = await #expect(throws: ServiceError.self) {
            try await TestServices.start("http-proxy", parameters: parameters.merging(["upstream": "127.0.0.1:1"]) { $1 })
        }
        #expect(error?.description.contains(message) == true, "\(error.map { "\($0)" } ?? "no error")")
    }
}
