import Foundation
#if canImport(Glibc)
import Glibc
#endif

// Real servers (Redis, PostgreSQL, Python's http.server) started by a test, each in a temporary
// folder of its own, on a free loopback port, so a test can put cynic between a real client and
// a real server. Each `start` waits until the server accepts (bounded, with the server's log in
// the error), and `stop` (or deinit) ends its processes and removes its folder.

/// Why a real server did not start or answer: the reason, and what the server itself said.
public struct RealServerFailed: Error, CustomStringConvertible {
    public let server: String
    public let reason: String
    /// The end of the server's own log (at most `RealServerFailed.logLimit` characters).
    public let log: String

    static let logLimit = 8_000

    public init(server: String, reason: String, log: String = "") {
        self.server = server
        self.reason = reason
        self.log = String(log.suffix(Self.logLimit))
    }

    public var description: String {
        log.isEmpty ? "\(server): \(reason) (it logged nothing)" : "\(server): \(reason); its log:\n\(log)"
    }

    /// The port picked free was taken by someone else before the server bound it: worth a retry.
    var portWasTaken: Bool { log.localizedCaseInsensitiveContains("address already in use") }

    static func notInstalled(_ program: String, debianPackages: String) -> RealServerFailed {
        RealServerFailed(server: program,
                         reason: "not found on PATH (Debian: apt-get install \(debianPackages); .ci/run installs it)")
    }
}

/// Picks a free port and starts a server on it; when another process took that port between
/// the pick and the bind (tests run in parallel), picks another, a few times at most.
func startOnFreePort<Server>(attempts: Int = 3, _ start: (Int) throws -> Server) throws -> Server {
    var attempt = 1
    while true {
        do {
            return try start(freePort())
        } catch let failure as RealServerFailed where failure.portWasTaken && attempt < attempts {
            attempt += 1
        }
    }
}

/// Whether process `pid` has ended. A zombie counts as ended: a daemon such as the postmaster
/// is reparented on exit, and whoever adopts it may be slow to reap it (or never do).
public func processHasEnded(_ pid: pid_t) -> Bool {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return true }
    // The state follows the command's closing parenthesis; the command itself may hold spaces.
    guard let close = stat.lastIndex(of: ")") else { return true }
    let state = stat[stat.index(after: close)...].drop(while: { $0 == " " }).first
    return state == "Z" || state == "X"
}

/// Waits until `pid` has ended; false after `timeout` seconds.
func waitUntilEnded(_ pid: pid_t, timeout: Double) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while !processHasEnded(pid) {
        if Date() > deadline { return false }
        usleep(10_000)
    }
    return true
}

/// A server program running as a child of the test, its standard output and error in a log file.
final class ServerProcess: @unchecked Sendable {
    // @unchecked: `process` is only stopped, and Process is thread-safe for that; the rest is immutable.
    let name: String
    let logFile: String
    private let process = Process()

    init(name: String, executable: String, arguments: [String], logFile: String) throws {
        self.name = name
        self.logFile = logFile
        guard FileManager.default.createFile(atPath: logFile, contents: nil),
              let log = FileHandle(forWritingAtPath: logFile) else {
            throw RealServerFailed(server: name, reason: "cannot create its log file \(logFile)")
        }
        // The child keeps its own copy of the descriptor: ours is closed once it runs.
        defer { try? log.close() }
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        do {
            try withSignalsUnblocked { try process.run() }
        } catch {
            throw RealServerFailed(server: name, reason: "cannot run \(executable): \(error)")
        }
    }

    deinit { stop() }

    var pid: pid_t { process.processIdentifier }
    var isRunning: Bool { process.isRunning }
    var terminationStatus: Int32 { process.terminationStatus }
    var log: String { (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? "" }

    func failure(_ reason: String) -> RealServerFailed {
        RealServerFailed(server: name, reason: reason, log: log)
    }

    /// Waits until 127.0.0.1:`port` accepts a connection while the server still runs; stops
    /// the server and throws, with its log, when it exits first or `timeout` seconds pass.
    func waitUntilAccepting(port: Int, timeout: Double) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if !process.isRunning {
                process.waitUntilExit()
                throw failure("exited with status \(process.terminationStatus) before accepting on 127.0.0.1:\(port)")
            }
            if (try? SocketClient(port: port)) != nil {
                // Someone else holding the port would make ours exit at its bind: check it did not.
                usleep(20_000)
                if process.isRunning { return }
                continue
            }
            if Date() > deadline {
                stop()
                throw failure("not accepting on 127.0.0.1:\(port) after \(timeout) s")
            }
            usleep(10_000)
        }
    }

    /// SIGTERM, then SIGKILL after `grace` seconds; returns once the process is reaped.
    func stop(grace: Double = 5) {
        guard process.isRunning else { return }
        process.terminate()
        if !waitUntilEnded(pid, timeout: grace) { kill(pid, SIGKILL) }
        process.waitUntilExit()
    }
}

// MARK: - Redis

/// `redis-server` on a free loopback port, with no persistence, its working folder temporary.
public final class RedisServer: @unchecked Sendable {
    // @unchecked: immutable, except that stop() may run twice (both steps are idempotent).
    public let port: Int
    /// Its working folder (`--dir`) and its log, `redis.log`; removed by `stop()`.
    public let folder: TemporaryFolder
    private let server: ServerProcess

    public var pid: pid_t { server.pid }
    public var url: String { "redis://127.0.0.1:\(port)" }

    public static var isInstalled: Bool {
        executablePath(of: "redis-server") != nil && executablePath(of: "redis-cli") != nil
    }

    private init(port: Int, folder: TemporaryFolder, server: ServerProcess) {
        self.port = port
        self.folder = folder
        self.server = server
    }

    deinit { stop() }

    /// Starts it and waits until it accepts. `arguments` are added to the command line
    /// (`["--timeout", "1"]`), after those that make it listen on loopback only and never save.
    public static func start(arguments: [String] = [], timeout: Double = 10) throws -> RedisServer {
        guard let executable = executablePath(of: "redis-server") else {
            throw RealServerFailed.notInstalled("redis-server", debianPackages: "redis-server redis-tools")
        }
        return try startOnFreePort { port in
            let folder = TemporaryFolder("cynic-redis")
            let server = try ServerProcess(
                name: "redis-server", executable: executable,
                arguments: ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                            "--dir", folder.path, "--daemonize", "no"] + arguments,
                logFile: folder.file("redis.log"))
            try server.waitUntilAccepting(port: port, timeout: timeout)
            return RedisServer(port: port, folder: folder, server: server)
        }
    }

    /// Runs `redis-cli ARGUMENTS` against this server, or against `port` (cynic in front of it).
    public func cli(_ arguments: [String], port: Int? = nil, timeout: Double = 10) throws -> ProgramResult {
        try runProgram("redis-cli", ["-h", "127.0.0.1", "-p", String(port ?? self.port)] + arguments, timeout: timeout)
    }

    /// Ends the server (SIGTERM, SIGKILL after 5 s) and removes its folder.
    public func stop() {
        server.stop()
        folder.remove()
    }
}

// MARK: - PostgreSQL

/// A PostgreSQL cluster made with `initdb` in a temporary folder and served on a free loopback
/// port (and a Unix socket in that folder), trusting every local connection, without fsync.
///
/// `initdb` refuses to run as root: when the test runs as root, the folder is given to the
/// `postgres` user and the server's programs run as that user through `runuser`.
///
/// The postmaster runs in the foreground as the test's child (through runuser, when root), not
/// daemonized by `pg_ctl start`: a daemon inherits the descriptor by which Foundation's Process
/// learns that its child ended, so `pg_ctl start` would never be seen to return; and a daemon is
/// reparented to a PID 1 that may never reap it.
public final class PostgresServer: @unchecked Sendable {
    // @unchecked: immutable, except that stop() may run twice (each step is idempotent).
    public let port: Int
    /// Holds `data/` (the cluster), `postgres.log` and the Unix socket; removed by `stop()`.
    public let folder: TemporaryFolder
    /// The folder of the installed version's `initdb` and `postgres`.
    public let programs: String
    /// The postmaster's process id.
    public let pid: pid_t
    private let server: ServerProcess

    public var dataFolder: String { folder.file("data") }
    public var logFile: String { folder.file("postgres.log") }
    /// The `-k` folder: `psql -h FOLDER` connects through the Unix socket.
    public var socketFolder: String { folder.path }
    public var url: String { "postgresql://\(Self.user)@127.0.0.1:\(port)/postgres" }

    /// The superuser `initdb` makes; trusted without a password.
    public static let user = "postgres"

    /// Who the server's programs run as when the test runs as root.
    private struct ServerUser {
        let name: String
        let uid: uid_t
        let gid: gid_t
    }

    public static var isInstalled: Bool {
        programsFolder() != nil && executablePath(of: "psql") != nil
    }

    private init(port: Int, folder: TemporaryFolder, programs: String, pid: pid_t, server: ServerProcess) {
        self.port = port
        self.folder = folder
        self.programs = programs
        self.pid = pid
        self.server = server
    }

    deinit { stop() }

    /// The newest installed server's program folder: Debian's `/usr/lib/postgresql/VERSION/bin`,
    /// else the folder of an `initdb` on PATH.
    static func programsFolder() -> String? {
        let debian = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: debian)) ?? [])
            .compactMap(Int.init)
            .filter { FileManager.default.isExecutableFile(atPath: "\(debian)/\($0)/bin/initdb") }
        if let newest = versions.max() { return "\(debian)/\(newest)/bin" }
        return executablePath(of: "initdb").map { URL(fileURLWithPath: $0).deletingLastPathComponent().path }
    }

    /// Makes a cluster and starts it; `timeout` bounds the start once initdb is done (about 1 s).
    public static func start(timeout: Double = 30) throws -> PostgresServer {
        guard let programs = programsFolder() else {
            throw RealServerFailed.notInstalled("initdb", debianPackages: "postgresql")
        }
        var serverUser: ServerUser?
        if geteuid() == 0 {
            guard let entry = getpwnam(Self.user) else {
                throw RealServerFailed(server: "postgres", reason: "running as root, and there is no `postgres` user to run the server as")
            }
            serverUser = ServerUser(name: Self.user, uid: entry.pointee.pw_uid, gid: entry.pointee.pw_gid)
        }
        let folder = TemporaryFolder("cynic-postgres")
        if let user = serverUser {
            guard chown(folder.path, user.uid, user.gid) == 0 else {
                throw RealServerFailed(server: "postgres", reason: "chown \(folder.path) to postgres: \(String(cString: strerror(errno)))")
            }
        }
        let (initdb, initdbArguments) = asServerUser(serverUser, programs + "/initdb",
                                                     ["-D", folder.file("data"), "-U", Self.user, "-A", "trust", "--no-sync"])
        let made = try runProgram(initdb, initdbArguments, timeout: 60)
        guard made.status == 0 else {
            var reason = "initdb exited with status \(made.status)"
            if serverUser != nil, made.output.contains("Permission denied") {
                reason += " (a parent of \(folder.path) is not traversable by postgres: set TMPDIR to a folder under /tmp)"
            }
            throw RealServerFailed(server: "initdb", reason: reason, log: made.output)
        }
        return try startOnFreePort { port in
            let (postgres, arguments) = asServerUser(serverUser, programs + "/postgres",
                                                     ["-D", folder.file("data"), "-p", String(port), "-k", folder.path,
                                                      "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
            let server = try ServerProcess(name: "postgres", executable: postgres, arguments: arguments,
                                           logFile: folder.file("postgres.log"))
            do {
                let pid = try waitUntilReady(server, data: folder.file("data"), port: port, timeout: timeout)
                return PostgresServer(port: port, folder: folder, programs: programs, pid: pid, server: server)
            } catch {
                // The log is in the error already; a half-started postmaster must not outlive it.
                if let pid = postmasterPID(data: folder.file("data")) { stopPostmaster(pid) }
                server.stop()
                try? FileManager.default.removeItem(atPath: folder.file("data/postmaster.pid"))
                throw error
            }
        }
    }

    /// `program arguments`, run as `user` through runuser when there is one.
    private static func asServerUser(_ user: ServerUser?, _ program: String, _ arguments: [String]) -> (String, [String]) {
        guard let user, let runuser = executablePath(of: "runuser") else { return (program, arguments) }
        return (runuser, ["-u", user.name, "--", program] + arguments)
    }

    /// Lines of `postmaster.pid`: the postmaster's id first, its state ("starting", "ready") eighth.
    private static func postmasterFile(data: String) -> [Substring] {
        let text = (try? String(contentsOfFile: data + "/postmaster.pid", encoding: .utf8)) ?? ""
        return text.split(separator: "\n", omittingEmptySubsequences: false)
    }

    private static func postmasterPID(data: String) -> pid_t? {
        postmasterFile(data: data).first.flatMap { pid_t($0) }
    }

    /// Waits until the postmaster says "ready" (what `pg_ctl -w` waits for) and accepts on `port`;
    /// returns its process id. Throws with the log when it exits first or `timeout` passes.
    private static func waitUntilReady(_ server: ServerProcess, data: String, port: Int, timeout: Double) throws -> pid_t {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let lines = postmasterFile(data: data)
            if lines.count > 7, lines[7].trimmingCharacters(in: .whitespaces) == "ready", let pid = pid_t(lines[0]) {
                try server.waitUntilAccepting(port: port, timeout: max(1, deadline.timeIntervalSinceNow))
                return pid
            }
            if !server.isRunning {
                throw server.failure("exited with status \(server.terminationStatus) before it was ready on 127.0.0.1:\(port)")
            }
            if Date() > deadline { throw server.failure("not ready on 127.0.0.1:\(port) after \(timeout) s") }
            usleep(10_000)
        }
    }

    /// SIGQUIT, PostgreSQL's immediate shutdown (nothing here needs to survive, and a smart
    /// shutdown would wait for every client, cynic included); SIGKILL if still there after 10 s.
    private static func stopPostmaster(_ pid: pid_t) {
        guard !processHasEnded(pid) else { return }
        kill(pid, SIGQUIT)
        if !waitUntilEnded(pid, timeout: 10) {
            kill(pid, SIGKILL)
            _ = waitUntilEnded(pid, timeout: 5)
        }
    }

    /// Runs `psql` with `sql` against this server over TCP, or against `port` (cynic in front of
    /// it): unaligned, tuples only, no psqlrc, stopping at the first error, so `select 1` prints
    /// "1\n". `arguments` come before `-c`.
    public func psql(_ sql: String, port: Int? = nil, arguments: [String] = [], timeout: Double = 10) throws -> ProgramResult {
        try runProgram("psql", ["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", String(port ?? self.port),
                                "-U", Self.user, "-d", "postgres"] + arguments + ["-c", sql],
                       environment: ["PGCONNECT_TIMEOUT": String(Int(timeout.rounded(.up)))], timeout: timeout)
    }

    /// Stops the postmaster at once, reaps it (and runuser) and removes the folder.
    public func stop() {
        Self.stopPostmaster(pid)
        server.stop()
        folder.remove()
    }
}

// MARK: - Python's http.server

/// `python3 -m http.server` serving a folder on a free loopback port (HTTP/1.0: one request per
/// connection).
public final class PythonHTTPServer: @unchecked Sendable {
    // @unchecked: immutable, except that stop() may run twice (both steps are idempotent).
    public let port: Int
    /// The folder served: the one given to `start`, or `www/` inside `workFolder`.
    public let folder: String
    /// Holds the server's log (`http.log`) and, when no folder was given, the one served; removed
    /// by `stop()`. A folder given to `start` is the caller's and stays.
    public let workFolder: TemporaryFolder
    private let server: ServerProcess

    public var pid: pid_t { server.pid }

    public static var isInstalled: Bool { executablePath(of: "python3") != nil }

    private init(port: Int, folder: String, workFolder: TemporaryFolder, server: ServerProcess) {
        self.port = port
        self.folder = folder
        self.workFolder = workFolder
        self.server = server
    }

    deinit { stop() }

    /// Serves `folder`, or a fresh empty one (write files into `folder` to serve them).
    public static func start(folder: String? = nil, timeout: Double = 10) throws -> PythonHTTPServer {
        guard let python = executablePath(of: "python3") else {
            throw RealServerFailed.notInstalled("python3", debianPackages: "python3")
        }
        return try startOnFreePort { port in
            let workFolder = TemporaryFolder("cynic-http")
            let served = folder ?? workFolder.file("www")
            if folder == nil { try FileManager.default.createDirectory(atPath: served, withIntermediateDirectories: false) }
            // -u: unbuffered, so the log holds what it said when a start fails.
            let server = try ServerProcess(
                name: "python3 -m http.server", executable: python,
                arguments: ["-u", "-m", "http.server", String(port), "--bind", "127.0.0.1", "--directory", served],
                logFile: workFolder.file("http.log"))
            try server.waitUntilAccepting(port: port, timeout: timeout)
            return PythonHTTPServer(port: port, folder: served, workFolder: workFolder, server: server)
        }
    }

    /// The URL of `path` on this server, or on `port` (cynic in front of it).
    public func url(_ path: String = "/", port: Int? = nil) -> String {
        "http://127.0.0.1:\(port ?? self.port)" + (path.hasPrefix("/") ? path : "/" + path)
    }

    /// Ends the server (SIGTERM, SIGKILL after 5 s) and removes its work folder.
    public func stop() {
        server.stop()
        workFolder.remove()
    }
}
