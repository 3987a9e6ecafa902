import CynicTestSupport
import Foundation
import Testing

/// The real servers tests start: each answers its own client directly, and leaves no process and
/// no folder behind once stopped.
@Suite("Real servers for tests")
struct RealServersTests {
    @Test("redis-server answers redis-cli, then stops leaving no process and no folder",
          .enabled(if: RedisServer.isInstalled))
    func redis() throws {
        let redis = try RedisServer.start()
        let pid = redis.pid, folder = redis.folder.path
        #expect(try redis.cli(["PING"]).standardOutput == "PONG\n")
        #expect(try redis.cli(["SET", "greeting", "hello"]).standardOutput == "OK\n")
        #expect(try redis.cli(["GET", "greeting"]).standardOutput == "hello\n")
        redis.stop()
        #expect(processHasEnded(pid))
        #expect(!FileManager.default.fileExists(atPath: folder))
    }

    static let redisPyInstalled = (try? runPython("import redis"))?.status == 0

    @Test("redis-server answers redis-py, without retries", .enabled(if: RedisServer.isInstalled && redisPyInstalled))
    func redisFromPython() throws {
        let redis = try RedisServer.start()
        // redis-py retries 10 times with backoff by default: a test through cynic wants none.
        let result = try runPython("""
            import sys, redis
            from redis.backoff import NoBackoff
            from redis.retry import Retry
            client = redis.Redis(host="127.0.0.1", port=int(sys.argv[1]), socket_timeout=5, retry=Retry(NoBackoff(), 0))
            client.set("n", 41)
            print(client.ping(), client.incr("n"))
            """, [String(redis.port)], timeout: 20)
        #expect(result.standardOutput == "True 42\n", "\(result.output)")
    }

    @Test("a redis-server that refuses to start is reported with its own log",
          .enabled(if: RedisServer.isInstalled))
    func redisRefusing() throws {
        do {
            let redis = try RedisServer.start(arguments: ["--maxmemory", "not-a-size"])
            Issue.record("started on \(redis.port) with a bad --maxmemory")
        } catch let failure as RealServerFailed {
            #expect(failure.reason.contains("exited with status"), "\(failure)")
            // What redis-server itself said about the argument it refused.
            #expect(failure.log.contains("maxmemory"), "\(failure)")
        }
    }

    @Test("PostgreSQL answers psql, then stops leaving no process and no folder",
          .enabled(if: PostgresServer.isInstalled))
    func postgres() throws {
        let postgres = try PostgresServer.start()
        let pid = postgres.pid, folder = postgres.folder.path
        let one = try postgres.psql("select 1")
        #expect(one.status == 0, "\(one.output)")
        #expect(one.standardOutput == "1\n", "\(one.output)")
        // The Unix socket in its folder works too: libpq takes a folder as the host.
        let overSocket = try runProgram("psql", ["-X", "-A", "-t", "-h", postgres.socketFolder, "-p", String(postgres.port),
                                                 "-U", PostgresServer.user, "-d", "postgres", "-c", "select 2"])
        #expect(overSocket.standardOutput == "2\n", "\(overSocket.output)")
        postgres.stop()
        #expect(processHasEnded(pid))
        #expect(!FileManager.default.fileExists(atPath: folder))
        #expect(try postgres.psql("select 1", timeout: 5).status != 0)
    }

    @Test("Python's http.server serves a file to curl, then stops leaving no process and no folder",
          .enabled(if: PythonHTTPServer.isInstalled && programExists("curl")))
    func pythonHTTP() throws {
        let http = try PythonHTTPServer.start()
        let pid = http.pid, folder = http.workFolder.path
        try "served as is\n".write(toFile: http.folder + "/page.txt", atomically: false, encoding: .utf8)
        let page = try runProgram("curl", ["-sS", "--max-time", "10", http.url("/page.txt")])
        #expect(page.status == 0, "\(page.output)")
        #expect(page.standardOutput == "served as is\n", "\(page.output)")
        http.stop()
        #expect(processHasEnded(pid))
        #expect(!FileManager.default.fileExists(atPath: folder))
    }

    @Test("Python's http.server serving the caller's folder leaves that folder in place",
          .enabled(if: PythonHTTPServer.isInstalled && programExists("curl")))
    func pythonHTTPGivenFolder() throws {
        let served = TemporaryFolder("cynic-served")
        try served.write("index.html", "<p>hello</p>\n")
        let http = try PythonHTTPServer.start(folder: served.path)
        let page = try runProgram("curl", ["-sS", "--max-time", "10", http.url()])
        #expect(page.standardOutput == "<p>hello</p>\n", "\(page.output)")
        http.stop()
        #expect(FileManager.default.fileExists(atPath: served.file("index.html")))
        #expect(!FileManager.default.fileExists(atPath: http.workFolder.path))
    }
}
