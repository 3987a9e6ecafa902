import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A program started by a test, with posix_spawn. Not Foundation's `Process`: on Linux (Swift
/// 6.3.1) its `run()` crashes the whole test process now and then — a 256-byte over-read of a
/// `dirent` in `findMaximumOpenFromProcSelfFD` (swift-corelibs-foundation PR #5472), seen here as
/// a SIGSEGV in `Process.run` under a full, process-heavy test run. Nor `FileHandle` reads, whose
/// `try!` traps on EINTR: the pipes are read with `read(2)`.
///
/// The child gets what a shell would give it: no signal blocked (Dispatch's threads block most,
/// and a server would then ignore SIGTERM), SIGPIPE at its default, no descriptor of ours but
/// its standard three (everything from 3 up is closed, as Foundation does, so a child never
/// holds a test's socket open).
public final class ChildProcess: @unchecked Sendable {
    // @unchecked: the exit status is guarded by `lock`; the rest is immutable.

    /// Where one of the child's standard streams goes.
    public enum Stream: Sendable {
        /// A pipe whose other end this object holds.
        case pipe
        /// /dev/null.
        case null
        /// This descriptor (a log file, say); it is not closed here.
        case descriptor(Int32)
    }

    public let processIdentifier: pid_t
    /// Our end of the `.pipe` standard input, or -1.
    private let inputDescriptor: Int32
    private let outputDescriptor: Int32
    private let errorDescriptor: Int32

    private let lock = NSLock()
    private var waitStatus: Int32?
    /// Our pipe ends not yet handed to a reader: closed in deinit. A reader closes its own at
    /// EOF, never while another thread may still read it (a number closed under a reader could
    /// be reused by an unrelated open).
    private var owned: Set<Int32>

    public struct SpawnFailed: Error, CustomStringConvertible {
        public let description: String
    }

    /// Starts `executable` (a path, or a name found on PATH) with `arguments`; `environment`
    /// entries are added to this process's own.
    public init(_ executable: String, _ arguments: [String], environment: [String: String] = [:],
                standardInput: Stream = .null, standardOutput: Stream = .pipe, standardError: Stream = .pipe) throws {
        guard let path = executablePath(of: executable) else {
            throw SpawnFailed(description: "no program '\(executable)' on PATH")
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var ours: [Int32] = [-1, -1, -1]
        var theirs: [Int32] = []
        defer { theirs.forEach { close($0) } }
        for (target, stream) in [standardInput, standardOutput, standardError].enumerated() {
            switch stream {
            case .pipe:
                var ends: [Int32] = [-1, -1]
                guard GNU.pipe2(&ends, O_CLOEXEC) == 0 else {
                    ours.filter { $0 >= 0 }.forEach { close($0) }
                    throw SpawnFailed(description: "pipe: \(String(cString: strerror(errno)))")
                }
                // The child reads its standard input from the pipe's read end, writes the others.
                let (child, parent) = target == 0 ? (ends[0], ends[1]) : (ends[1], ends[0])
                ours[target] = parent
                theirs.append(child)
                posix_spawn_file_actions_adddup2(&actions, child, Int32(target))
            case .null:
                posix_spawn_file_actions_addopen(&actions, Int32(target), "/dev/null", target == 0 ? O_RDONLY : O_WRONLY, 0)
            case .descriptor(let descriptor):
                posix_spawn_file_actions_adddup2(&actions, descriptor, Int32(target))
            }
        }
        _ = GNU.addCloseFrom?(&actions, 3)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t(), defaults = sigset_t()
        sigemptyset(&none)
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGPIPE)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let merged = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let envp = merged.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, path, &actions, &attributes, argv, envp)
        guard spawned == 0 else {
            ours.filter { $0 >= 0 }.forEach { close($0) }
            throw SpawnFailed(description: "cannot run \(path): \(String(cString: strerror(spawned)))")
        }
        processIdentifier = pid
        inputDescriptor = ours[0]
        outputDescriptor = ours[1]
        errorDescriptor = ours[2]
        owned = Set(ours.filter { $0 >= 0 })
    }

    deinit {
        owned.forEach { close($0) }
        // Reaped if it has ended; one still running is its owner's to stop.
        _ = isRunning
    }

    /// Whether it still runs (reaping it once it has ended).
    public var isRunning: Bool {
        lock.lock()
        defer { lock.unlock() }
        guard waitStatus == nil else { return false }
        var status: Int32 = 0
        let reaped = waitpid(processIdentifier, &status, WNOHANG)
        if reaped == processIdentifier || (reaped < 0 && errno == ECHILD) {
            waitStatus = reaped == processIdentifier ? status : 0
            return false
        }
        return true
    }

    /// Blocks until it has ended.
    public func waitUntilExit() {
        while isRunning { usleep(5_000) }
    }

    /// Waits at most `timeout` seconds; whether it ended.
    public func waitForExit(timeout: Double) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while isRunning {
            if Date() > deadline { return false }
            usleep(5_000)
        }
        return true
    }

    /// As Foundation's: the exit code, or the number of the signal that ended it.
    public var terminationStatus: Int32 {
        lock.lock()
        defer { lock.unlock() }
        guard let status = waitStatus else { return 0 }
        let signal = status & 0x7f
        return signal == 0 ? (status >> 8) & 0xff : signal
    }

    /// SIGTERM.
    public func terminate() {
        if isRunning { kill(processIdentifier, SIGTERM) }
    }

    /// Writes all of `bytes` to the child's standard input, then closes it (EOF for the child).
    public func writeInputAndClose(_ bytes: [UInt8]) {
        guard let descriptor = take(inputDescriptor) else { return }
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            if written < 0 { if errno == EINTR { continue } else { break } }
            offset += written
        }
        close(descriptor)
    }

    /// The child's whole standard output (or error), read until EOF, retrying on EINTR.
    public func readOutputToEnd() -> [UInt8] { take(outputDescriptor).map(Self.readToEndAndClose) ?? [] }
    public func readErrorToEnd() -> [UInt8] { take(errorDescriptor).map(Self.readToEndAndClose) ?? [] }

    /// Calls `body` with each piece of the child's standard output (or error) as it comes, on a
    /// thread of its own, until EOF.
    public func streamOutput(_ body: @escaping @Sendable ([UInt8]) -> Void) { stream(take(outputDescriptor), body) }
    public func streamError(_ body: @escaping @Sendable ([UInt8]) -> Void) { stream(take(errorDescriptor), body) }

    private func take(_ descriptor: Int32) -> Int32? {
        lock.lock()
        defer { lock.unlock() }
        return owned.remove(descriptor)
    }

    /// Everything `descriptor` gives until its end (or an error); closes it.
    static func readToEndAndClose(_ descriptor: Int32) -> [UInt8] {
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { return bytes }
            bytes.append(contentsOf: chunk[..<count])
        }
    }

    private func stream(_ descriptor: Int32?, _ body: @escaping @Sendable ([UInt8]) -> Void) {
        guard let descriptor else { return }
        let thread = Thread {
            defer { close(descriptor) }
            var chunk = [UInt8](repeating: 0, count: 64 << 10)
            while true {
                let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
                if count < 0, errno == EINTR { continue }
                guard count > 0 else { return }
                body(Array(chunk[..<count]))
            }
        }
        thread.start()
    }
}

/// Two glibc functions Swift's Glibc module does not declare (they need _GNU_SOURCE), found at
/// run time: pipe2, to make a pipe close-on-exec atomically (another thread's spawn must not
/// inherit it, or our reader would wait for that child's exit), and
/// posix_spawn_file_actions_addclosefrom_np (glibc 2.34), to close every other descriptor in the
/// child.
private enum GNU {
    typealias Pipe2 = @convention(c) (UnsafeMutablePointer<Int32>?, Int32) -> Int32
    typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, Int32) -> Int32

    static let pipe2: Pipe2 = {
        guard let symbol = dlsym(nil, "pipe2") else { fatalError("glibc without pipe2") }
        return unsafeBitCast(symbol, to: Pipe2.self)
    }()

    static let addCloseFrom: AddCloseFrom? = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np").map {
        unsafeBitCast($0, to: AddCloseFrom.self)
    }
}
