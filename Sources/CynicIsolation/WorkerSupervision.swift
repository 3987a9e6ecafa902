import CynicRuntime

/// What the supervisor does when its worker ends: a pure state machine, driven by the
/// supervisor's clock (or a test's), with no process in it.
///
/// - A worker that ends before it is ready, with a status and no signal, failed to start (a bad
///   configuration, a port in use): it said why, and the supervisor exits with its status, since
///   another worker would fail the same way.
/// - A crash restarts the worker at once. The plugin generation it crashed in is quarantined:
///   the next worker refuses it, so one bad plugin cannot take every service down at each of
///   its connections.
/// - Crashes that quarantine nothing new, close together, are a crash loop: each restart waits
///   twice as long as the last, up to `maximumBackoff`. A worker that stays up for `settled`
///   clears the count.
/// - Once stopping, the worker's end is the supervisor's: it exits with the worker's status.
public struct WorkerSupervision: Sendable {
    /// How a worker process ended.
    public enum Exit: Equatable, Sendable, CustomStringConvertible {
        case exited(status: Int32)
        case signalled(Int32)

        /// "SIGSEGV", "status 1".
        public var description: String {
            switch self {
            case .exited(let status): return "status \(status)"
            case .signalled(let signal):
                let names: [Int32: String] = [1: "SIGHUP", 2: "SIGINT", 4: "SIGILL", 5: "SIGTRAP", 6: "SIGABRT", 7: "SIGBUS",
                                              8: "SIGFPE", 9: "SIGKILL", 11: "SIGSEGV", 13: "SIGPIPE", 15: "SIGTERM"]
                return names[signal] ?? "signal \(signal)"
            }
        }
    }

    /// A plugin call a worker died in, as the shared callback table tells it.
    public struct Blame: Equatable, Sendable {
        public let plugin: String
        public let file: String
        public let version: String
        public let callback: String
        public let service: String

        public init(plugin: String, file: String, version: String, callback: String, service: String) {
            self.plugin = plugin
            self.file = file
            self.version = version
            self.callback = callback
            self.service = service
        }
    }

    public enum Decision: Equatable, Sendable {
        /// Start a new worker after `delay`; `quarantined`, when given, was added for it.
        case restart(after: Duration, quarantined: PluginQuarantine.Entry?)
        /// The supervisor ends with this status.
        case exit(status: Int32)
    }

    private enum Phase: Equatable {
        case starting(since: Duration)
        case ready(since: Duration)
        case stopping
    }

    public static let firstBackoff: Duration = .milliseconds(250)
    public static let maximumBackoff: Duration = .seconds(5)
    /// Up this long, a worker has ended a crash loop.
    public static let settled: Duration = .seconds(10)

    public private(set) var quarantine = PluginQuarantine()
    private var phase: Phase = .starting(since: .zero)
    /// Crashes in a row that quarantined nothing new, each within `settled` of the last start.
    private var unexplainedCrashes = 0

    public init() {}

    /// A worker was started.
    public mutating func started(at now: Duration) {
        if phase != .stopping { phase = .starting(since: now) }
    }

    /// The worker started every service.
    public mutating func ready(at now: Duration) {
        if case .starting = phase { phase = .ready(since: now) }
    }

    /// SIGTERM or SIGINT: the next end is the last.
    public mutating func stop() {
        phase = .stopping
    }

    public var isStopping: Bool { phase == .stopping }

    /// The worker ended `how`, in `blame`'s call if it was in one.
    public mutating func ended(_ how: Exit, blame: Blame?, at now: Duration) -> Decision {
        switch phase {
        case .stopping:
            if case .exited(let status) = how { return .exit(status: status) }
            return .exit(status: 1)
        case .starting(let since):
            if case .exited(let status) = how, blame == nil { return .exit(status: status) }
            return crashed(how, blame: blame, upFor: now - since)
        case .ready(let since):
            return crashed(how, blame: blame, upFor: now - since)
        }
    }

    private mutating func crashed(_ how: Exit, blame: Blame?, upFor: Duration) -> Decision {
        if upFor >= Self.settled { unexplainedCrashes = 0 }
        if let blame {
            let entry = PluginQuarantine.Entry(plugin: blame.plugin, file: blame.file, version: blame.version,
                                               crash: "\(how) in \(blame.callback), service \(blame.service)")
            // Its cause is gone with it: the next worker can start at once.
            if !blame.version.isEmpty, quarantine.add(entry) {
                return .restart(after: .zero, quarantined: entry)
            }
        }
        unexplainedCrashes += 1
        guard unexplainedCrashes > 1 else { return .restart(after: .zero, quarantined: nil) }
        var delay = Self.firstBackoff
        for _ in 2..<unexplainedCrashes where delay < Self.maximumBackoff { delay *= 2 }
        return .restart(after: min(delay, Self.maximumBackoff), quarantined: nil)
    }
}
