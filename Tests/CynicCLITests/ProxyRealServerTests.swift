import CynicTestSupport
import Foundation
import Testing

// `cynic serve proxy` and `cynic serve http-proxy`, run as a user runs them, in front of real
// servers the tests start on loopback (Python's http.server, redis-server, PostgreSQL, and raw
// TCP servers in Python where a test must see bytes the clients cannot show), with the real
// clients (curl, requests, redis-cli, redis-py, psql) reporting what they see.
//
// Timings are compared with wide margins: the machine running these is small and busy.

/// A `cynic serve BEHAVIOUR` process in front of `upstream`, and the port it listens on.
private struct Proxy {
    let cynic: CynicProcess
    let port: Int

    init(_ behaviour: String = "proxy", upstream: Int, parameters: [String] = [], shapers: [String] = [],
         arguments: [String] = []) throws {
        var command = ["serve", behaviour, "--port", "0", "--param", "upstream=127.0.0.1:\(upstream)"]
        for parameter in parameters { command += ["--param", parameter] }
        for shaper in shapers { command += ["--shape", shaper] }
        cynic = try CynicProcess(command + arguments)
        port = try #require(try cynic.waitForServices(1)[behaviour])
    }

    var pid: pid_t { cynic.process.processIdentifier }
}

private let redisPyInstalled = (try? runPython("import redis"))?.status == 0
private let requestsInstalled = (try? runPython("import requests"))?.status == 0

/// redis-py without its default retries (10, with backoff): a fault shows as the error it is.
private let redisPyPrelude = """
    import sys, time, redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry
    def connect(port, **options):
        return redis.Redis(host="127.0.0.1", port=port, retry=Retry(NoBackoff(), 0), **options)

    """

/// Lines of `text` that are not empty.
private func lines(_ text: String) -> [String] {
    text.split(separator: "\n").map(String.init)
}

@Suite("proxy in front of real servers, with real clients")
struct ProxyRealServerTests {
    // MARK: - Passing through unchanged

    @Test("Python's http.server: curl and requests get the very bytes they get directly",
          .enabled(if: programExists("curl") && requestsInstalled))
    func httpServer() throws {
        let server = try PythonHTTPServer.start()
        var bytes = [UInt8](repeating: 0, count: 1_000_000)
        for index in bytes.indices { bytes[index] = UInt8.random(in: 0...255) }
        try Data(bytes).write(to: URL(fileURLWithPath: server.folder + "/file.bin"))
        let proxy = try Proxy(upstream: server.port)

        let out = server.workFolder.file("through.bin")
        let curl = try runProgram("curl", ["-sS", "--max-time", "20", "-o", out, "-w", "%{http_code}",
                                           server.url("/file.bin", port: proxy.port)])
        #expect(curl.status == 0 && curl.standardOutput == "200", "\(curl.output)")
        #expect(FileManager.default.contents(atPath: out) == Data(bytes))

        let summary = """
            import hashlib, requests, sys
            r = requests.get(sys.argv[1], timeout=20)
            print(r.status_code, r.headers["Content-Length"], hashlib.sha256(r.content).hexdigest())
            """
        let direct = try runPython(summary, [server.url("/file.bin")])
        let proxied = try runPython(summary, [server.url("/file.bin", port: proxy.port)])
        #expect(direct.status == 0 && direct.standardOutput.hasPrefix("200 1000000 "), "\(direct.output)")
        #expect(proxied.standardOutput == direct.standardOutput, "\(proxied.output)")
    }

    @Test("redis-server: redis-cli's replies through the proxy are those it gets directly",
          .enabled(if: RedisServer.isInstalled))
    func redisCLI() throws {
        let redis = try RedisServer.start()
        let proxy = try Proxy(upstream: redis.port)
        let commands: [[String]] = [["PING"], ["SET", "k", "v1"], ["GET", "k"], ["INCR", "n"], ["INCR", "n"],
                                    ["RPUSH", "l", "a", "b", "c"], ["LRANGE", "l", "0", "-1"], ["GET", "missing"],
                                    ["HSET", "h", "f", "x"], ["NOSUCHCOMMAND"]]
        // Through the proxy first, then directly on an emptied server: the same replies.
        var throughProxy: [String] = [], direct: [String] = []
        for command in commands { throughProxy.append(try redis.cli(command, port: proxy.port).output) }
        #expect(try redis.cli(["FLUSHALL"]).standardOutput == "OK\n")
        for command in commands { direct.append(try redis.cli(command).output) }
        #expect(throughProxy == direct)
        #expect(throughProxy[2] == "v1\n" && throughProxy[4] == "2\n" && throughProxy[6] == "a\nb\nc\n", "\(throughProxy)")
    }

    @Test("redis-server: redis-py, with a pipeline and a 1 MB value, gets through the proxy what it gets directly",
          .enabled(if: RedisServer.isInstalled && redisPyInstalled))
    func redisPy() throws {
        let redis = try RedisServer.start()
        let proxy = try Proxy(upstream: redis.port)
        let script = redisPyPrelude + """
            import hashlib, os
            r = connect(int(sys.argv[1]), socket_timeout=10)
            r.flushall()
            value = os.urandom(1 << 20)
            r.set("big", value)
            pipe = r.pipeline()
            for i in range(100): pipe.incr("counter")
            print(r.ping(), pipe.execute()[-1], hashlib.sha256(r.get("big")).hexdigest() == hashlib.sha256(value).hexdigest(),
                  r.get("missing"), r.strlen("big"))
            """
        let direct = try runPython(script, [String(redis.port)])
        let proxied = try runPython(script, [String(proxy.port)])
        #expect(direct.standardOutput == "True 100 True None 1048576\n", "\(direct.output)")
        #expect(proxied.standardOutput == direct.standardOutput, "\(proxied.output)")
    }

    @Test("PostgreSQL: psql through the proxy gets what it gets directly", .enabled(if: PostgresServer.isInstalled))
    func postgres() throws {
        let postgres = try PostgresServer.start()
        let proxy = try Proxy(upstream: postgres.port)
        let setup = try postgres.psql("create table t (id int primary key, name text); insert into t select i, md5(i::text) from generate_series(1, 1000) i",
                                      port: proxy.port)
        #expect(setup.status == 0, "\(setup.output)")
        for sql in ["select 1", "select count(*), sum(id) from t", "select name from t where id = 42",
                    "select string_agg(name, ',' order by id) from t", "select 1/0"] {
            let proxied = try postgres.psql(sql, port: proxy.port)
            let direct = try postgres.psql(sql)
            #expect(proxied.status == direct.status, "\(sql): \(proxied.output)")
            #expect(proxied.standardOutput == direct.standardOutput, "\(sql)")
            #expect(proxied.standardError == direct.standardError, "\(sql)")
        }
        #expect(try postgres.psql("select count(*), sum(id) from t", port: proxy.port).standardOutput == "1000|500500\n")
        #expect(try postgres.psql("select 1/0", port: proxy.port).standardError.contains("division by zero"))
    }

    @Test("100 MB each way at once arrive whole, with the same SHA-256, and an EOF each way")
    func hundredMegabytesEachWay() throws {
        // The upstream sends 100 MB while it reads to the client's EOF, hashing both; then closes.
        let upstream = try UpstreamServer(script: """
            import hashlib, os, socket, sys, threading
            listener = socket.create_server(("127.0.0.1", 0))
            print(listener.getsockname()[1])
            s, _ = listener.accept()
            sent, received = hashlib.sha256(), hashlib.sha256()
            def send():
                for _ in range(100):
                    chunk = os.urandom(1 << 20)
                    sent.update(chunk)
                    s.sendall(chunk)
            sender = threading.Thread(target=send)
            sender.start()
            count = 0
            while True:
                chunk = s.recv(1 << 20)
                if not chunk: break
                received.update(chunk)
                count += len(chunk)
            sender.join()
            sys.stderr.write("upstream received %d %s sent %s\\n" % (count, received.hexdigest(), sent.hexdigest()))
            s.close()
            """)
        let proxy = try Proxy(upstream: upstream.port)
        let client = try runPython("""
            import hashlib, os, socket, sys, threading
            s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=120)
            sent, received = hashlib.sha256(), hashlib.sha256()
            def send():
                for _ in range(100):
                    chunk = os.urandom(1 << 20)
                    sent.update(chunk)
                    s.sendall(chunk)
                s.shutdown(socket.SHUT_WR)
            sender = threading.Thread(target=send)
            sender.start()
            count = 0
            while True:
                chunk = s.recv(1 << 20)
                if not chunk: break
                received.update(chunk)
                count += len(chunk)
            sender.join()
            print("client received %d %s sent %s" % (count, received.hexdigest(), sent.hexdigest()))
            """, [String(proxy.port)], timeout: 300)
        let deadline = Date().addingTimeInterval(10)
        while upstream.logLines(startingWith: "upstream received").isEmpty, Date() < deadline { usleep(20_000) }
        let clientSide = client.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: " ").map(String.init)
        let upstreamSide = (upstream.logLines(startingWith: "upstream received").first ?? "").split(separator: " ").map(String.init)
        try #require(clientSide.count == 6 && upstreamSide.count == 6, "client: \(client.output) upstream: \(upstream.log)")
        #expect(clientSide[2] == "104857600" && upstreamSide[2] == "104857600")
        #expect(clientSide[3] == upstreamSide[5], "what the upstream sent is what the client received")
        #expect(upstreamSide[3] == clientSide[5], "what the client sent is what the upstream received")
    }

    // MARK: - Faults, as the real clients see them

    /// Median round trip of a redis-py command, in milliseconds, on a connection made beforehand.
    private func redisRoundTrip(port: Int) throws -> Double {
        let result = try runPython(redisPyPrelude + """
            import statistics
            r = connect(int(sys.argv[1]), socket_timeout=10)
            r.ping()
            times = []
            for i in range(7):
                start = time.monotonic()
                r.set("k", str(i))
                times.append((time.monotonic() - start) * 1000)
            print(statistics.median(times))
            """, [String(port)])
        return try #require(Double(result.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)), "\(result.output)")
    }

    @Test("latency per chunk (200 ms) on Redis: each command's round trip grows by about 200 ms, either direction",
          .enabled(if: RedisServer.isInstalled && redisPyInstalled),
          arguments: ["downstream", "upstream"])
    func latencyPerChunk(direction: String) throws {
        let redis = try RedisServer.start()
        let plain = try Proxy(upstream: redis.port)
        let slow = try Proxy(upstream: redis.port, shapers: ["latency:ms=200,mode=per-chunk,direction=\(direction)"])
        let base = try redisRoundTrip(port: plain.port)
        let delayed = try redisRoundTrip(port: slow.port)
        // Each command is one chunk each way, and only one way is delayed.
        #expect(delayed - base > 170 && delayed - base < 600, "round trip \(base) ms without, \(delayed) ms with")
    }

    @Test("reset-after in the middle of a PostgreSQL query's result: psql exits 2, the connection lost",
          .enabled(if: PostgresServer.isInstalled))
    func resetMidQuery() throws {
        let postgres = try PostgresServer.start()
        // The start-up exchange is well under 2 KB; the result is about 4 MB.
        let proxy = try Proxy(upstream: postgres.port, shapers: ["reset-after:bytes=200000"])
        let sql = "select repeat('x', 400) from generate_series(1, 10000)"
        let direct = try postgres.psql(sql)
        #expect(direct.status == 0 && lines(direct.standardOutput).count == 10000)
        let result = try postgres.psql(sql, port: proxy.port)
        #expect(result.status == 2, "\(result.output)")
        // libpq does not tell a reset from a FIN on every path: accept both wordings.
        #expect(result.standardError.contains("server closed the connection unexpectedly")
                || result.standardError.localizedCaseInsensitiveContains("connection reset"), "\(result.standardError)")
        #expect(!result.standardOutput.contains("xxxx"), "no partial result printed")
    }

    @Test("an upstream limit of 1000 bytes, half-closing: the upstream sees EOF after exactly 1000; the client gets its answer, and no EOF")
    func upstreamLimit() throws {
        // Reads to EOF, answers with the count, and keeps the connection open.
        let upstream = try UpstreamServer(script: """
            import socket, sys, time
            listener = socket.create_server(("127.0.0.1", 0))
            print(listener.getsockname()[1])
            s, _ = listener.accept()
            total = 0
            while True:
                chunk = s.recv(65536)
                if not chunk: break
                total += len(chunk)
            sys.stderr.write("eof after %d\\n" % total)
            s.sendall(b"got %d\\n" % total)
            time.sleep(60)
            """)
        let proxy = try Proxy(upstream: upstream.port, shapers: ["limit:bytes=1000,half_close=true,direction=upstream"])
        let client = try SocketClient(port: proxy.port)
        for _ in 0..<10 { client.send([UInt8](repeating: 0x61, count: 1000)); usleep(20_000) }
        var answer: [UInt8] = []
        var next = client.receive(timeout: 10)
        while case .bytes(let chunk) = next {
            answer += chunk
            next = client.receive(timeout: 1.5)
        }
        let deadline = Date().addingTimeInterval(5)
        while upstream.logLines(startingWith: "eof after").isEmpty, Date() < deadline { usleep(20_000) }
        #expect(upstream.logLines(startingWith: "eof after") == ["eof after 1000"], "\(upstream.log)")
        // A half-close: the upstream's answer still comes back through the proxy, and the client's
        // connection stays open (a plain `limit` would close the upstream, and the proxy the client).
        #expect(String(decoding: answer, as: UTF8.self) == "got 1000\n")
        #expect(next == .timedOut, "no EOF (nor reset) reaches the client: \(next)")
        #expect(client.tcpState == 1 /* TCP_ESTABLISHED */)
    }

    @Test("timeout on Redis: redis-py's read times out; the connection stays open, the server still has its client",
          .enabled(if: RedisServer.isInstalled && redisPyInstalled))
    func timeoutShaper() throws {
        let redis = try RedisServer.start()
        let proxy = try Proxy(upstream: redis.port, shapers: ["timeout"])
        let result = try runPython(redisPyPrelude + """
            import socket, struct
            r = connect(int(sys.argv[1]), socket_timeout=1)
            try:
                r.ping()
                print("answered")
            except redis.exceptions.TimeoutError as error:
                print("TimeoutError:", error)
            # A raw client, to look at the connection after the timeout.
            s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1)
            s.sendall(b"PING\\r\\n")
            try:
                print("read", s.recv(100))
            except socket.timeout:
                print("timed out")
            time.sleep(0.5)
            print("state", s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0])
            clients = [line for line in redis.Redis(port=int(sys.argv[2])).client_list()]
            print("server clients", len(clients))
            """, [String(proxy.port), String(redis.port)])
        let said = lines(result.standardOutput)
        #expect(said.first == "TimeoutError: Timeout reading from socket", "\(result.output)")
        #expect(said.dropFirst().first == "timed out")
        #expect(said.dropFirst(2).first == "state 1", "ESTABLISHED after the timeout")
        // The raw client's upstream connection, and the one asking.
        #expect(said.last == "server clients 2", "\(result.output)")
    }

    @Test("an upstream that is down: curl gets what `unreachable` says", .enabled(if: programExists("curl")),
          arguments: [("reset", Int32(56), "Connection reset by peer"), ("close", 52, "Empty reply from server"),
                      ("hang", 28, "Operation timed out")])
    func unreachable(mode: String, exit: Int32, message: String) throws {
        // A port bound and never listened on: refused, and taken by no one else (a port merely
        // picked free could be the very one cynic then listens on, a proxy to itself).
        let held = RefusingPort()
        let proxy = try Proxy(upstream: held.port, parameters: ["unreachable=\(mode)"])
        let started = Date()
        let curl = try runProgram("curl", ["-sS", "--max-time", "2", "http://127.0.0.1:\(proxy.port)/"], timeout: 20)
        #expect(curl.status == exit, "\(curl.output)")
        #expect(curl.standardError.contains(message), "\(curl.standardError)")
        if mode != "hang" { #expect(Date().timeIntervalSince(started) < 1.5, "at once, not at curl's timeout") }
    }

    // MARK: - Back-pressure

    @Test("1 GiB from the upstream to a client reading at 64 MB/s: cynic's RSS stays within 64 MiB of its start")
    func backPressure() throws {
        let upstream = try UpstreamServer(script: """
            import os, socket, sys
            listener = socket.create_server(("127.0.0.1", 0))
            print(listener.getsockname()[1])
            s, _ = listener.accept()
            chunk = os.urandom(1 << 20)
            for _ in range(1024): s.sendall(chunk)
            s.close()
            """)
        let proxy = try Proxy(upstream: upstream.port)
        let result = try runPython("""
            import socket, sys, time
            def rss():
                for line in open("/proc/%s/status" % sys.argv[2]):
                    if line.startswith("VmRSS:"): return int(line.split()[1]) // 1024
            start = rss()
            s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=30)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
            count, highest, samples = 0, start, 0
            began = time.monotonic()
            next_sample = began
            while True:
                chunk = s.recv(1 << 16)
                if not chunk: break
                count += len(chunk)
                ahead = count / (64 << 20) - (time.monotonic() - began)
                if ahead > 0: time.sleep(ahead)
                if time.monotonic() >= next_sample:
                    highest, samples = max(highest, rss()), samples + 1
                    next_sample += 0.1
            print(count, start, highest, samples)
            """, [String(proxy.port), String(proxy.pid)], timeout: 300)
        let figures = result.standardOutput.split(separator: " ").compactMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        try #require(figures.count == 4, "\(result.output)")
        #expect(figures[0] == 1 << 30, "the whole GiB arrived")
        #expect(figures[3] >= 50, "sampled all along: \(figures[3]) samples")
        #expect(figures[2] - figures[1] <= 64, "RSS \(figures[1]) MiB at the start, \(figures[2]) MiB at most")
    }
}

@Suite("http-proxy in front of Python's http.server, with real clients")
struct HTTPProxyRealServerTests {
    /// An http.server serving `a.txt` ("A"), and how many requests for it reached it so far.
    private func server() throws -> PythonHTTPServer {
        let server = try PythonHTTPServer.start()
        try "A".write(toFile: server.folder + "/a.txt", atomically: true, encoding: .utf8)
        return server
    }

    private func requestsSeen(by server: PythonHTTPServer, expecting count: Int? = nil) -> Int {
        // http.server logs each request as it ends: wait a little for the last one.
        let deadline = Date().addingTimeInterval(count == nil ? 0 : 3)
        while true {
            let log = (try? String(contentsOfFile: server.workFolder.file("http.log"), encoding: .utf8)) ?? ""
            let seen = log.components(separatedBy: "\"GET /a.txt HTTP/1.1\" 200").count - 1
            if seen == count || Date() > deadline { return seen }
            usleep(20_000)
        }
    }

    @Test("fail=first:2 with=status:503: a requests Session retrying 503 (urllib3 Retry, total=3) succeeds on the third try; http.server saw one request",
          .enabled(if: requestsInstalled))
    func retriesThrough503() throws {
        let server = try server()
        let proxy = try Proxy("http-proxy", upstream: server.port, parameters: ["fail=first:2", "with=status:503"])
        let result = try runPython("""
            import requests, sys
            from requests.adapters import HTTPAdapter
            from urllib3.util.retry import Retry
            session = requests.Session()
            session.mount("http://", HTTPAdapter(max_retries=Retry(total=3, status_forcelist=[503], backoff_factor=0)))
            r = session.get(sys.argv[1], timeout=10)
            print(r.status_code, r.text, [h.status for h in r.raw.retries.history])
            """, [server.url("/a.txt", port: proxy.port)])
        #expect(result.standardOutput == "200 A [503, 503]\n", "\(result.output)")
        #expect(requestsSeen(by: server, expecting: 1) == 1)
    }

    @Test("fail=every:10 with=reset: of 30 curl runs, the 10th, 20th and 30th exit 56; http.server saw the other 27",
          .enabled(if: programExists("curl")))
    func everyTenthResetWithCurl() throws {
        let server = try server()
        let proxy = try Proxy("http-proxy", upstream: server.port, parameters: ["fail=every:10", "with=reset"])
        var reset: [Int] = []
        for number in 1...30 {
            let curl = try runProgram("curl", ["-sS", "--max-time", "10", server.url("/a.txt", port: proxy.port)])
            switch curl.status {
            case 0: #expect(curl.standardOutput == "A")
            case 56:
                #expect(curl.standardError.contains("Connection reset by peer"))
                reset.append(number)
            default: Issue.record("request \(number): curl exit \(curl.status): \(curl.output)")
            }
        }
        #expect(reset == [10, 20, 30])
        #expect(requestsSeen(by: server, expecting: 27) == 27)
    }

    /// The numbers of the 40 requests (each on a connection of its own) that were reset.
    private func resetsWithSeed(_ seed: String, server: PythonHTTPServer) throws -> [Int] {
        let proxy = try Proxy("http-proxy", upstream: server.port, parameters: ["fail=probability:0.25", "with=reset", "seed=\(seed)"])
        defer { proxy.cynic.stop() }
        let result = try runPython("""
            import requests, sys
            reset = []
            for number in range(1, 41):
                try:
                    requests.get(sys.argv[1], timeout=10)
                except requests.exceptions.ConnectionError as error:
                    if "reset" in str(error).lower(): reset.append(number)
                    else: print("not a reset:", error)
            print(" ".join(map(str, reset)))
            """, [server.url("/a.txt", port: proxy.port)], timeout: 120)
        #expect(!result.standardOutput.contains("not a reset"), "\(result.output)")
        return result.standardOutput.split(separator: " ").compactMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    @Test("fail=probability:0.25 with=reset and --param seed: two cynic processes with one seed reset the same requests",
          .enabled(if: requestsInstalled))
    func seededAcrossProcesses() throws {
        let server = try server()
        let first = try resetsWithSeed("11", server: server)
        let again = try resetsWithSeed("11", server: server)
        let other = try resetsWithSeed("12", server: server)
        #expect(first == again)
        #expect(first != other)
        #expect((3...20).contains(first.count), "about 10 of 40: \(first)")
        let total = first.count + again.count + other.count
        #expect(requestsSeen(by: server, expecting: 120 - total) == 120 - total)
    }
}
