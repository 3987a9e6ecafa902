import CynicRuntime
import CynicTestSupport
import Foundation
import Testing

/// The seven original behaviours, each through a real client, asserting what the client sees.
@Suite("Shipped behaviours")
struct ShippedBehaviourTests {
    @Test("reset: the first recv fails with ECONNRESET, the next send with EPIPE (Python)")
    func resetFromPython() async throws {
        let service = try await TestServices.start("reset")
        defer { Task { await service.stop() } }
        let result = try runPython("""
            import errno, socket, sys, time
            s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
            try:
                s.recv(1024); print("recv: no error")
            except OSError as e:
                print("recv:", errno.errorcode[e.errno])
            try:
                s.send(b"hello"); print("send: no error")
            except OSError as e:
                print("send:", errno.errorcode[e.errno])
            """, [String(service.port)])
        #expect(result.standardOutput == "recv: ECONNRESET\nsend: EPIPE\n", "\(result.output)")
    }

    @Test("reset: curl exits 56 with 'Connection reset by peer'", .enabled(if: programExists("curl")))
    func resetFromCurl() async throws {
        let service = try await TestServices.start("reset")
        defer { Task { await service.stop() } }
        for _ in 0..<5 {
            let result = try runProgram("curl", ["-sS", "--max-time", "10", "http://127.0.0.1:\(service.port)/"])
            #expect(result.status == 56, "\(result.output)")
            #expect(result.standardError.contains("Connection reset by peer"), "\(result.output)")
        }
    }

    @Test("random: exactly `length` bytes, then EOF", arguments: [nil, 0, 1, 100_000] as [Int?])
    func random(length: Int?) async throws {
        let service = try await TestServices.start("random", parameters: length.map { ["length": String($0)] } ?? [:])
        defer { Task { await service.stop() } }
        let client = try SocketClient(port: service.port)
        let (bytes, end) = client.receiveAll()
        #expect(bytes.count == (length ?? 7))
        #expect(end == .endOfFile)
        if bytes.count >= 1000 {
            // Random, not a constant fill: a byte value repeats far less than a tenth of the time.
            let counts = Dictionary(grouping: bytes, by: { $0 }).mapValues(\.count)
            #expect(counts.values.max()! < bytes.count / 10)
        }
    }

    @Test("noresponse: no byte within a timeout, and the connection stays open")
    func noResponse() async throws {
        let service = try await TestServices.start("noresponse")
        defer { Task { await service.stop() } }
        let client = try SocketClient(port: service.port)
        #expect(client.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n") == 0)
        #expect(client.receive(timeout: 1.0) == .timedOut)
        #expect(client.tcpState == 1 /* TCP_ESTABLISHED */)
        #expect(client.send([UInt8](repeating: 7, count: 100_000)) == 0, "it reads and discards")
        #expect(client.receive(timeout: 0.5) == .timedOut)
        // When the client gives up and closes its side, the service closes too.
        client.shutdownWrite()
        #expect(client.receive(timeout: 10) == .endOfFile)
    }

    @Test("noresponse: hold_ms bounds the hold, then a FIN")
    func noResponseHold() async throws {
        let service = try await TestServices.start("noresponse", parameters: ["hold_ms": "200"])
        defer { Task { await service.stop() } }
        let start = Date() // before the connect: the server's clock may start before it returns
        let client = try SocketClient(port: service.port)
        #expect(client.receive(timeout: 10) == .endOfFile)
        #expect(Date().timeIntervalSince(start) >= 0.19)
    }

    @Test("http-html: 200, text/html, the Hello, World! page, then close (curl)", .enabled(if: programExists("curl")))
    func httpHTML() async throws {
        let service = try await TestServices.start("http-html")
        defer { Task { await service.stop() } }
        let result = try runProgram("curl", ["-sS", "-i", "--max-time", "10", "http://127.0.0.1:\(service.port)/"])
        #expect(result.status == 0, "\(result.output)")
        let (head, body) = splitResponse(result.standardOutput)
        #expect(head.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(head.lowercased().contains("content-type: text/html"))
        #expect(body.contains("<h1>Hello, World!</h1>"))
    }

    @Test("http-json: 200, application/json, {\"message\": \"Hello, World!\"}, keep-alive (Python http.client)")
    func httpJSON() async throws {
        let service = try await TestServices.start("http-json")
        defer { Task { await service.stop() } }
        let result = try runPython("""
            import http.client, json, sys
            c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=10)
            for _ in range(3):
                c.request("GET", "/")
                r = c.getresponse()
                body = r.read()
                print(r.status, r.getheader("Content-Type"), json.loads(body)["message"], c.sock is not None)
            """, [String(service.port)])
        #expect(result.standardOutput == String(repeating: "200 application/json Hello, World! True\n", count: 3), "\(result.output)")
        #expect(service.acceptedConnections == 1, "the three requests shared one connection")
    }

    @Test("http-json: body_file and content_type parameters")
    func httpJSONParameters() async throws {
        let folder = TemporaryFolder()
        let body = try folder.write("body.json", "[1, 2, 3]")
        let service = try await TestServices.start("http-json", parameters: ["body_file": body, "content_type": "application/vnd.test+json"])
        defer { Task { await service.stop() } }
        let client = try SocketClient(port: service.port)
        client.send("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        let (bytes, end) = client.receiveAll()
        let (head, text) = splitResponse(String(decoding: bytes, as: UTF8.self))
        #expect(head.contains("Content-Type: application/vnd.test+json\r\n"))
        #expect(head.contains("Content-Length: 9\r\n"))
        #expect(text == "[1, 2, 3]")
        #expect(end == .endOfFile)
    }

    @Test("http-json: an unreadable body_file refuses the service with the file's name")
    func httpJSONMissingBody() async throws {
        let error = await #expect(throws: ServiceError.self) {
            try await TestServices.start("http-json", parameters: ["body_file": "/nonexistent/body.json"])
        }
        #expect(error?.description.contains("/nonexistent/body.json") == true)
    }

    @Test("http-nobody: headers, then EOF, no body")
    func httpNoBody() async throws {
        let service = try await TestServices.start("http-nobody")
        defer { Task { await service.stop() } }
        let client = try SocketClient(port: service.port)
        client.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        let (bytes, end) = client.receiveAll()
        let (head, body) = splitResponse(String(decoding: bytes, as: UTF8.self))
        #expect(head.hasPrefix("HTTP/1.1 200"))
        #expect(head.contains("Content-Length: "))
        #expect(body.isEmpty)
        #expect(end == .endOfFile)
    }

    @Test("http-nobody: curl reports the missing body", .enabled(if: programExists("curl")))
    func httpNoBodyCurl() async throws {
        let service = try await TestServices.start("http-nobody")
        defer { Task { await service.stop() } }
        let result = try runProgram("curl", ["-sS", "--max-time", "10", "http://127.0.0.1:\(service.port)/"])
        #expect(result.status == 18, "\(result.output)")
        #expect(result.standardError.contains("transfer closed with"), "\(result.output)")
    }

    @Test("http-slow: one body byte per interval, in order, first at once, with a correct total time")
    func httpSlow() async throws {
        let interval = 0.020
        let service = try await TestServices.start("http-slow", parameters: ["interval_ms": "20"])
        defer { Task { await service.stop() } }
        let start = Date()
        let client = try SocketClient(port: service.port)
        client.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        var received: [UInt8] = []
        var arrivals: [(offset: Int, time: Double)] = []
        while true {
            let chunk = client.receive(timeout: 10)
            guard case .bytes(let bytes) = chunk else {
                #expect(chunk == .endOfFile)
                break
            }
            arrivals.append((received.count, Date().timeIntervalSince(start)))
            received += bytes
        }
        let (head, body) = splitResponse(String(decoding: received, as: UTF8.self))
        let length = try #require(Int(headerValue(head, "Content-Length") ?? ""))
        #expect(body.utf8.count == length)
        #expect(body.contains("Hello, World!"))
        // Headers and the first byte come at once; each later byte about one interval after
        // the one before. The total is (length - 1) intervals: never less, and on a loaded
        // machine not wildly more.
        let headEnd = head.utf8.count + 4
        let firstByteTime = try #require(arrivals.last { $0.offset <= headEnd }?.time)
        #expect(firstByteTime < 2.0)
        let total = try #require(arrivals.last?.time)
        #expect(total >= Double(length - 1) * interval * 0.95)
        #expect(total < Double(length - 1) * interval * 3 + 2)
        // Bytes arrive one by one, not in a burst.
        #expect(arrivals.count >= length / 2)
    }
}

@Suite("Catalogue behaviours on a raw socket")
struct RawCatalogueTests {
    /// Bytes a client with a small send buffer gets out to `service` before its writes stall.
    func bytesBeforeStall(_ service: Service) async throws -> Int {
        try await offThePool {
            let client = try SocketClient(port: service.port)
            var timeout = timeval(tv_sec: 0, tv_usec: 500_000)
            setsockopt(client.fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            var small: Int32 = 4096
            setsockopt(client.fd, SOL_SOCKET, SO_SNDBUF, &small, socklen_t(MemoryLayout<Int32>.size))
            let chunk = [UInt8](repeating: 1, count: 4096)
            var sent = 0
            for _ in 0..<4096 {
                let n = chunk.withUnsafeBytes { send(client.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if n <= 0 { break }
                sent += n
            }
            #expect(client.tcpState == 1 /* TCP_ESTABLISHED */)
            return sent
        }
    }

    @Test("zero-window: the client's writes stall after a few KiB; the connection stays open")
    func zeroWindow() async throws {
        let service = try await TestServices.start("zero-window")
        defer { Task { await service.stop() } }
        let sent = try await bytesBeforeStall(service)
        // A small receive window and our small send buffer: far less than the 16 MiB offered.
        #expect(sent < 1 << 20, "\(sent) bytes went out before the writes stalled")
    }

    @Test("zero-window: receive_buffer sets each service's window; a bigger one takes more before the stall")
    func zeroWindowReceiveBuffer() async throws {
        // 200,000 is under the usual net.core.rmem_max (212,992), which caps SO_RCVBUF.
        let small = try await TestServices.start("zero-window", parameters: ["receive_buffer": "4096"])
        let large = try await TestServices.start("zero-window", parameters: ["receive_buffer": "200000"])
        defer { Task { await small.stop(); await large.stop() } }
        let smallSent = try await bytesBeforeStall(small)
        let largeSent = try await bytesBeforeStall(large)
        #expect(largeSent > smallSent + 150_000, "\(smallSent) bytes with 4096, \(largeSent) with 200000")
        let refused = await #expect(throws: ServiceError.self) {
            try await TestServices.start("zero-window", parameters: ["receive_buffer": "0"])
        }
        #expect(refused?.description.contains("receive_buffer must be at least 1") == true)
    }

    @Test("never-accept: a client's connect times out")
    func neverAccept() async throws {
        let service = try await TestServices.start("never-accept")
        defer { Task { await service.stop() } }
        let result = try await offThePool {
            try runPython("""
                import socket, sys
                s = socket.socket(); s.settimeout(1.5)
                try:
                    s.connect(("127.0.0.1", int(sys.argv[1]))); print("connected")
                except socket.timeout:
                    print("timed out")
                """, [String(service.port)])
        }
        #expect(result.standardOutput == "timed out\n", "\(result.output)")
    }
}

/// Splits a raw HTTP response into the head (without the blank line) and the body.
func splitResponse(_ text: String) -> (head: String, body: String) {
    guard let range = text.range(of: "\r\n\r\n") else { return (text, "") }
    return (String(text[..<range.lowerBound]) + "\r\n", String(text[range.upperBound...]))
}

func headerValue(_ head: String, _ name: String) -> String? {
    for line in head.components(separatedBy: "\r\n") {
        let parts = line.split(separator: ":", maxSplits: 1)
        if parts.count == 2, parts[0].lowercased() == name.lowercased() {
            return parts[1].trimmingCharacters(in: .whitespaces)
        }
    }
    return nil
}
