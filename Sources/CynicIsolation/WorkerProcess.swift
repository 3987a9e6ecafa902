import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A worker: this same executable, started with posix_spawn (not fork: a forked copy of a
/// process with Swift's runtime and NIO's threads is not safe to run), with its end of the link
/// as descriptor 3 and `--isolated-worker 3` after the supervisor's own arguments.
final class WorkerProcess {
    /// The descriptor the worker finds its link on.
    static let linkDescriptor: Int32 = 3

    let processIdentifier: pid_t
    let link: MessageSocket

    private init(processIdentifier: pid_t, link: MessageSocket) {
        self.processIdentifier = processIdentifier
        self.link = link
    }

    /// Starts one. `arguments` are the supervisor's, without the executable and `--isolate`.
    static func spawn(arguments: [String]) throws(IsolationError) -> WorkerProcess {
        let (ours, theirs) = try MessageSocket.pair()
        defer { close(theirs) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        // dup2 clears close-on-exec on the copy; everything else of ours stays behind.
        posix_spawn_file_actions_adddup2(&actions, theirs, linkDescriptor)
        _ = closeFrom?(&actions, linkDescriptor + 1)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Its own process group: a terminal's Ctrl-C reaches the supervisor alone, which stops
        // the worker once (a second signal would make the worker exit without draining).
        posix_spawnattr_setpgroup(&attributes, 0)
        // The signals the supervisor ignores (it hears them through Dispatch) are the worker's
        // to handle: back to their defaults, none blocked.
        var none = sigset_t(), defaults = sigset_t()
        sigemptyset(&none)
        sigemptyset(&defaults)
        for signal in [SIGINT, SIGTERM, SIGHUP, SIGPIPE] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv = ([CommandLine.arguments.first ?? "cynic"] + arguments + ["--isolated-worker", "\(linkDescriptor)"])
            .map { strdup($0) } + [nil]
        // Swift's backtracer would spend seconds describing a crash before the worker dies; the
        // supervisor's line says what matters, and restarting cannot wait.
        var environment = ProcessInfo.processInfo.environment
        environment["SWIFT_BACKTRACE"] = "enable=no"
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let status = posix_spawn(&pid, "/proc/self/exe", &actions, &attributes, argv, envp)
        guard status == 0 else { throw IsolationError("cannot start the worker: \(String(cString: strerror(status)))") }
        return WorkerProcess(processIdentifier: pid, link: ours)
    }

    /// Blocks until the worker has ended, and says how.
    func waitForExit() -> WorkerSupervision.Exit {
        var status: Int32 = 0
        while waitpid(processIdentifier, &status, 0) < 0 {
            if errno != EINTR { return .exited(status: 1) }
        }
        let signal = status & 0x7f
        return signal == 0 ? .exited(status: (status >> 8) & 0xff) : .signalled(signal)
    }

    /// posix_spawn_file_actions_addclosefrom_np (glibc 2.34), which Swift's Glibc module does not
    /// declare: found at run time, and skipped where it is missing (the worker then inherits our
    /// descriptors that are not close-on-exec).
    private typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, Int32) -> Int32
    private static let closeFrom: AddCloseFrom? = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np").map {
        unsafeBitCast($0, to: AddCloseFrom.self)
    }
}
