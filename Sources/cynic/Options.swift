import ArgumentParser
import CynicPlugins
import CynicRuntime
import Logging
#if canImport(Glibc)
// @preconcurrency: Swift 6 sees libc's `stdout`/`stderr` globals as shared mutable state.
@preconcurrency import Glibc
#endif

/// Where plugins come from: the default search path (see `PluginDirectory.defaultSearchPath`),
/// then each --plugin-dir in order.
struct PluginOptions: ParsableArguments {
    @Option(name: .customLong("plugin-dir"), help: ArgumentHelp("A folder of plugins (*.so) to load; repeatable.", valueName: "DIR"))
    var directories: [String] = []

    @OptionGroup var trust: PluginTrustOptions

    /// The default search path (see `PluginDirectory.defaultSearchPath`), then each --plugin-dir.
    var searchPath: [PluginDirectory] {
        let environment = ["HOME", "CYNIC_PLUGIN_PATH"].reduce(into: [String: String]()) { environment, name in
            environment[name] = getenv(name).map { String(cString: $0) }
        }
        return PluginDirectory.defaultSearchPath(environment: environment)
            + directories.map { PluginDirectory(path: $0) }
    }

    func validate() throws {
        for directory in directories where !PluginDirectory.isFolder(directory) {
            throw ValidationError("--plugin-dir \(directory): not a folder")
        }
    }

    /// Loads every plugin; each refused file is one warning line, and the rest still load.
    func loadCatalog(logger: Logger) throws -> PluginCatalog {
        let catalog = try PluginCatalog.load(searchPath, trust: trust.trust)
        for refusal in catalog.refusals {
            logger.warning("\(refusal)")
        }
        return catalog
    }
}

/// Whose plugin files are loaded: by default only files and folders nobody but this user (or
/// root) owns or can write, since a plugin's code runs as this user.
struct PluginTrustOptions: ParsableArguments {
    @Flag(name: .customLong("allow-unsafe-plugins"),
          help: "Also load plugin files and folders that other users own or can write (their code runs as you).")
    var allowUnsafe = false

    var trust: PluginTrust { allowUnsafe ? .anyone : .ownerOnly }

    /// The line said at start when the check is off, so nobody runs that way unknowingly.
    func warnIfUnsafe(_ logger: Logger) {
        guard allowUnsafe else { return }
        logger.warning("--allow-unsafe-plugins: plugin files and folders that other users own or can write are loaded, and their code runs as uid \(geteuid())")
    }
}

struct LoggingOptions: ParsableArguments {
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var level: Logger.Level = .info

    /// Log lines go to standard error; standard output is for what a caller parses (addresses).
    func bootstrap() {
        let level = self.level
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        // Line-buffered even into a pipe: a test harness waits for the "listening" lines.
        setvbuf(stdout, nil, _IOLBF, 0)
        // A client that resets must never take the server down.
        signal(SIGPIPE, SIG_IGN)
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

/// A failure the user can fix: one line on standard error, exit status 1, no stack trace.
func failure(_ message: String) -> ExitCode {
    fputs("cynic: \(message)\n", stderr)
    return ExitCode.failure
}

/// A size as a user writes it: "268435456", "256M", "1G", "512k".
struct ByteCount: ExpressibleByArgument, CustomStringConvertible {
    let bytes: Int

    init(_ bytes: Int) { self.bytes = bytes }

    init?(argument: String) {
        let units: [Character: Int] = ["k": 1 << 10, "m": 1 << 20, "g": 1 << 30]
        var digits = Substring(argument)
        var unit = 1
        if let last = digits.last?.lowercased().first, let scale = units[last] {
            unit = scale
            digits = digits.dropLast()
        }
        guard let number = Int(digits), number > 0 else { return nil }
        let (bytes, overflow) = number.multipliedReportingOverflow(by: unit)
        guard !overflow else { return nil }
        self.bytes = bytes
    }

    var description: String {
        for (suffix, scale) in [("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)] where bytes % scale == 0 {
            return "\(bytes / scale)\(suffix)"
        }
        return "\(bytes)"
    }

    var defaultValueDescription: String { description }
}

/// An environment variable's value; nil when unset or empty.
func environmentValue(_ name: String) -> String? {
    getenv(name).map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 }
}
