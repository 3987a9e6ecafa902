import ArgumentParser

/// How cynic watches plugin code, and how long it lets connections finish when told to stop:
/// shared by `cynic` (run) and `cynic serve`.
struct ShutdownOptions: ParsableArguments {
    @Option(name: .customLong("slow-callback-ms"), help: ArgumentHelp(
        "Warn when one plugin callback holds an event loop this long (0: never).", valueName: "MS"))
    var slowCallbackMilliseconds: Int = 500

    @Option(name: .customLong("drain-seconds"), help: ArgumentHelp(
        "On SIGTERM or SIGINT, let open connections end for this long, then close them.", valueName: "SECONDS"))
    var drainSeconds: Double = 5

    func validate() throws {
        if slowCallbackMilliseconds < 0 {
            throw ValidationError("--slow-callback-ms \(slowCallbackMilliseconds): expected 0 (off) or more")
        }
        if !(drainSeconds >= 0) {
            throw ValidationError("--drain-seconds \(drainSeconds): expected 0 or more")
        }
    }

    /// nil when the watchdog is off.
    var slowCallbackThreshold: Duration? {
        slowCallbackMilliseconds > 0 ? .milliseconds(slowCallbackMilliseconds) : nil
    }

    var drain: Duration { .milliseconds(Int64(drainSeconds * 1000)) }
}
