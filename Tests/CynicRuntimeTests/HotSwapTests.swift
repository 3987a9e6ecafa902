import CynicConfig
import CynicPlugins
import CynicRuntime
import CynicTestSupport
import Foundation
import Testing

/// A C plugin that answers every connection with `first`, waits `pause` ms, sends `second`, closes.
func answeringPlugin(first: String, second: String, pause: Int = 0, name: String = "swapme") -> String {
    """
    #include <cynic/plugin.h>
    static const cynic_host *host;
    static void *create(const cynic_host *h) { host = h; return NULL; }
    static void *conn_open(void *instance, cynic_conn *conn) {
        (void)instance;
        host->send(conn, "\(first)", \(first.utf8.count));
        if (\(pause) > 0) host->wait(conn, \(pause));
        host->send(conn, "\(second)", \(second.utf8.count));
        host->close(conn);
        return NULL;
    }
    static const cynic_plugin plugin = {
        .abi_version = CYNIC_ABI_VERSION, .struct_size = sizeof(cynic_plugin), .name = "\(name)",
        .create = create, .conn_open = conn_open,
    };
    CYNIC_EXPORT const cynic_plugin *cynic_plugin_entry(void) { return &plugin; }
    """
}

/// A server in this process over a plugin folder of the test's own, watched as cynic watches.
struct SwapFixture {
    let folder = TemporaryFolder("cynic-swap")
    let staging = TemporaryFolder("cynic-staging")
    let log = CapturedLog()
    let copies: PluginCopies
    let server: Server
    let port: Int

    /// `tls`, when given, serves it over TLS from the test run's CA.
    init(_ source: String, tls: TLSSpec? = nil) async throws {
        try compileCPlugin(source, named: "swapme", into: folder.path)
        copies = try PluginCopies()
        server = Server(directories: [PluginDirectory(path: folder.path)],
                        source: .fixed([ServiceSpec(name: "swapme", behaviour: "swapme",
                                                    address: .tcp(host: "127.0.0.1", port: 0), tls: tls, origin: "test")]),
                        group: TestServices.group, controlLoop: TestServices.control.next(),
                        logger: log.logger, copies: copies, tls: TestServices.tls)
        _ = try await server.start()
        port = await server.runningServices[0].port
    }

    /// Builds a new version elsewhere and renames it in: the safe way to install.
    func install(_ source: String) throws {
        let built = try compileCPlugin(source, named: "swapme", into: staging.path)
        #expect(rename(built, folder.file("swapme.so")) == 0)
    }

    /// What a new connection gets, and how it ended (blocking: call it off the cooperative pool).
    static func reply(port: Int) throws -> (text: String, end: SocketClient.Received) {
        let (bytes, end) = try SocketClient(port: port).receiveAll()
        return (String(decoding: bytes, as: UTF8.self), end)
    }

    /// What a new connection gets (blocking: call it off the cooperative pool).
    static func answer(port: Int) throws -> String {
        try reply(port: port).text
    }

    func answer() async throws -> String {
        let port = self.port
        return try await offThePool { try Self.answer(port: port) }
    }

    /// Waits until new connections get `expected`.
    func waitForAnswer(_ expected: String, timeout: Double = 30) async throws -> Bool {
        try await missedAnswer(expected, timeout: timeout) == nil
    }

    /// Waits until new connections get `expected`: nil then, or, after `timeout` seconds, what the
    /// last connection got instead, for the failure message.
    func missedAnswer(_ expected: String, timeout: Double = 30) async throws -> String? {
        let port = self.port
        return try await offThePool {
            let start = Date()
            var last = "nothing"
            while Date().timeIntervalSince(start) < timeout {
                do {
                    let (answer, end) = try Self.reply(port: port)
                    if answer == expected { return nil }
                    last = "'\(answer)' then \(end)"
                } catch {
                    last = "\(error)"
                }
                usleep(5_000)
            }
            return "\(last), \(Int(Date().timeIntervalSince(start))) s after the wait began"
        }
    }

    func logShows(_ fragment: String) async throws -> Bool {
        let log = self.log
        return try await offThePool { log.waitFor(fragment) }
    }

    func stop() async {
        await server.stop()
        copies.removeAll()
    }
}

@Suite("Hot swap")
struct HotSwapTests {
    @Test("a connection mid-way through a slow response completes on the old version; new ones get the new")
    func swapMidResponse() async throws {
        let fixture = try await SwapFixture(answeringPlugin(first: "old-1 ", second: "old-2", pause: 1000))
        let slow = try SocketClient(port: fixture.port)
        #expect(try await offThePool { slow.receive() } == .bytes(Array("old-1 ".utf8)))
        try fixture.install(answeringPlugin(first: "new-1 ", second: "new-2"))
        #expect(try await fixture.waitForAnswer("new-1 new-2"))
        let rest = try await offThePool { slow.receiveAll() }
        #expect(rest.bytes == Array("old-2".utf8))
        #expect(rest.end == .endOfFile)
        #expect(try await fixture.logShows("swapped swapme: version "))
        await fixture.stop()
    }

    @Test("overwriting a loaded plugin in place with cp, connections open: no crash, the new version serves")
    func copyInPlace() async throws {
        let fixture = try await SwapFixture(answeringPlugin(first: "v1 ", second: "end", pause: 500))
        let open = try SocketClient(port: fixture.port)
        _ = try await offThePool { open.receive() }
        let built = try compileCPlugin(answeringPlugin(first: "v2 ", second: "end"), named: "swapme", into: fixture.staging.path)
        let copy = try runProgram("cp", [built, fixture.folder.file("swapme.so")])
        #expect(copy.status == 0)
        #expect(try await fixture.waitForAnswer("v2 end"))
        let rest = try await offThePool { open.receiveAll() }
        #expect(rest.bytes == Array("end".utf8))
        #expect(rest.end == .endOfFile)
        await fixture.stop()
    }

    @Test("a broken file dropped over a working plugin: the old version keeps serving, the error is logged")
    func brokenVersion() async throws {
        let fixture = try await SwapFixture(answeringPlugin(first: "good ", second: "answer"))
        try "not a shared object".write(toFile: fixture.staging.file("broken.so"), atomically: false, encoding: .utf8)
        #expect(rename(fixture.staging.file("broken.so"), fixture.folder.file("swapme.so")) == 0)
        #expect(try await fixture.logShows("refused plugin \(fixture.folder.file("swapme.so")): not a loadable shared object"))
        #expect(fixture.log.text.contains("keeps serving"))
        #expect(try await fixture.answer() == "good answer")
        // A later good version is taken.
        try fixture.install(answeringPlugin(first: "fixed ", second: "answer"))
        #expect(try await fixture.waitForAnswer("fixed answer"))
        await fixture.stop()
    }

    @Test("remove a plugin: its service refuses connections; put it back: it serves again, same port")
    func removeAndRestore() async throws {
        let fixture = try await SwapFixture(answeringPlugin(first: "here ", second: "I am"))
        #expect(unlink(fixture.folder.file("swapme.so")) == 0)
        let port = fixture.port
        let refused = try await offThePool {
            let deadline = Date().addingTimeInterval(10)
            while Date() < deadline {
                do { _ = try SocketClient(port: port) } catch let error as SocketClient.ConnectFailed {
                    if error.errno == ECONNREFUSED { return true }
                }
                usleep(5_000)
            }
            return false
        }
        #expect(refused)
        #expect(try await fixture.logShows("service swapme stopped accepting: behaviour swapme is gone"))
        try fixture.install(answeringPlugin(first: "back ", second: "again"))
        #expect(try await fixture.waitForAnswer("back again"))
        await fixture.stop()
    }

    @Test("a service created while its plugin is swapped serves the new generation, not the one current when the creation began")
    func swapDuringCreate() async throws {
        // No watcher: the test makes each swap itself, at the same moment as a creation, ten
        // times, so either may reach the server first (the creation binds its listener, awaiting,
        // after it made its setup).
        let folder = TemporaryFolder("cynic-swap"), staging = TemporaryFolder("cynic-staging")
        try compileCPlugin(answeringPlugin(first: "gen-0 ", second: "done"), named: "swapme", into: folder.path)
        let copies = try PluginCopies()
        let log = CapturedLog()
        let server = Server(directories: [PluginDirectory(path: folder.path)],
                            source: .fixed([ServiceSpec(name: "swapme", behaviour: "swapme",
                                                        address: .tcp(host: "127.0.0.1", port: 0), origin: "test")]),
                            group: TestServices.group, controlLoop: TestServices.control.next(),
                            logger: log.logger, copies: copies, watch: false, tls: TestServices.tls)
        _ = try await server.start()
        let stagingPath = staging.path
        let versions = try await offThePool {
            try (1...10).map { generation in
                try compileCPlugin(answeringPlugin(first: "gen-\(generation) ", second: "done"),
                                   named: "v\(generation)", into: stagingPath)
            }
        }
        for (index, version) in versions.enumerated() {
            let generation = index + 1
            #expect(rename(version, folder.file("swapme.so")) == 0)
            let spec = ServiceSpec(name: "extra-\(generation)", behaviour: "swapme",
                                   address: .tcp(host: "127.0.0.1", port: 0), origin: "test")
            async let created = server.createService(spec)
            async let swapped: Void = server.pluginFilesChanged([folder.file("swapme.so")])
            _ = try await created
            await swapped
            // Every service, the one just made included, answers with the generation installed.
            for service in await server.runningServices {
                let port = service.port
                let answer = try await offThePool { try SwapFixture.answer(port: port) }
                #expect(answer == "gen-\(generation) done", "\(service.spec.name) after swap \(generation)")
            }
        }
        await server.stop()
        copies.removeAll()
    }

    @Test("100 swaps under concurrent load: zero failed requests, no descriptor or mapping left behind")
    func swapsUnderLoad() async throws {
        let fixture = try await SwapFixture(answeringPlugin(first: "gen-0 ", second: "done"))
        let copiesDirectory = fixture.copies.directory
        func mappings() throws -> Int {
            try procFileText("/proc/self/maps")
                .split(separator: "\n").filter { $0.contains(copiesDirectory) }.count
        }
        /// Descriptors open on a plugin file or a private copy: a loader that leaks one per swap
        /// shows here.
        func pluginDescriptors() throws -> Int {
            try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").filter { fd in
                let target = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(fd)")) ?? ""
                return target.contains(copiesDirectory) || target.contains(fixture.folder.path) || target.contains(fixture.staging.path)
            }.count
        }
        let mappingsBefore = try mappings()
        // The versions are built first: the test measures swapping, not the compiler. Off the
        // pool: a hundred runs of cc would hold one of its few threads for many seconds, and every
        // other test waiting for it.
        let staging = fixture.staging.path
        let versions = try await offThePool {
            try (1...100).map { generation in
                try compileCPlugin(answeringPlugin(first: "gen-\(generation) ", second: "done"),
                                   named: "v\(generation)", into: staging)
            }
        }
        let load = LoadCounter()
        let port = fixture.port
        let clients = (0..<4).map { _ in
            Thread.detachNewThreadWithResult {
                while !load.stopped {
                    do {
                        let (bytes, end) = try SocketClient(port: port).receiveAll()
                        let text = String(decoding: bytes, as: UTF8.self)
                        if text.hasPrefix("gen-"), text.hasSuffix(" done"), end == .endOfFile {
                            load.succeeded()
                        } else {
                            load.failed("'\(text)' then \(end)")
                        }
                    } catch {
                        load.failed("\(error)")
                    }
                }
            }
        }
        for (index, version) in versions.enumerated() {
            let generation = index + 1
            #expect(rename(version, fixture.folder.file("swapme.so")) == 0)
            let missed = try await fixture.missedAnswer("gen-\(generation) done")
            #expect(missed == nil, """
                generation \(generation) not served: the last connection got \(missed ?? ""); the log ends
                \(fixture.log.text.split(separator: "\n").suffix(6).joined(separator: "\n"))
                """)
        }
        load.stop()
        _ = try await offThePool { for client in clients { client.wait() } }
        #expect(load.failures.isEmpty, "\(load.failures.prefix(5))")
        #expect(load.successes > 100)
        // Every retired C generation is unloaded once its connections end: only the current
        // one stays mapped.
        let deadline = Date().addingTimeInterval(20)
        while try mappings() > mappingsBefore, Date() < deadline { try await Task.sleep(for: .milliseconds(20)) }
        let left = try procFileText("/proc/self/maps")
            .split(separator: "\n").filter { $0.contains(copiesDirectory) }
        let status = await fixture.server.statusLines().joined(separator: "\n")
        #expect(left.count == mappingsBefore, "\(left.joined(separator: "\n"))\n\(status)")
        #expect(try pluginDescriptors() == 0)
        await fixture.stop()
    }
}

/// Counts a load loop's outcomes across threads.
final class LoadCounter: @unchecked Sendable {
    // @unchecked: guarded by `lock`.
    private let lock = NSLock()
    private var ok = 0
    private var bad: [String] = []
    private var done = false

    var stopped: Bool { lock.lock(); defer { lock.unlock() }; return done }
    var successes: Int { lock.lock(); defer { lock.unlock() }; return ok }
    var failures: [String] { lock.lock(); defer { lock.unlock() }; return bad }
    func succeeded() { lock.lock(); ok += 1; lock.unlock() }
    func failed(_ why: String) { lock.lock(); bad.append(why); lock.unlock() }
    func stop() { lock.lock(); done = true; lock.unlock() }
}

extension Thread {
    /// A thread running `body`, and a way to wait for its end.
    static func detachNewThreadWithResult(_ body: @escaping @Sendable () -> Void) -> JoinableThread {
        let joinable = JoinableThread()
        Thread.detachNewThread {
            body()
            joinable.finished.signal()
        }
        return joinable
    }
}

final class JoinableThread: Sendable {
    let finished = DispatchSemaphore(value: 0)
    func wait() { finished.wait() }
}
