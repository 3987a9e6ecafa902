/// One log record received by the sink, whatever format it came in.
public struct LogRecord: Sendable, Hashable {
    /// The wire format a record came in.
    public enum Format: String, Sendable, Hashable {
        /// A length-prefixed JSON object.
        case json
        /// Python's `logging.handlers.SocketHandler`: a length-prefixed pickle of the record's `__dict__`.
        case pickle
    }

    /// The level name, upper-cased the way Python names levels: "DEBUG", "INFO", "WARNING", "ERROR",
    /// "CRITICAL", or a custom name; "Level 15" for a number without a name.
    public var level: String
    /// The numeric level in Python's scale (DEBUG 10 ... CRITICAL 50), when known.
    public var levelNumber: Int?
    /// The logger's name, such as "tests.client"; empty when the sender gave none.
    public var loggerName: String
    /// The message, already formatted by the sender; it may span several lines.
    public var message: String
    /// The sender's process id: the one the record names, else (on Linux) the connected peer's.
    public var processID: Int?
    /// Python's `processName`, when sent.
    public var processName: String?
    /// A short label for the sender chosen by the sender (JSON `source`), shown in the console line.
    public var source: String?
    /// When the record was made, in seconds since 1970, when sent.
    public var created: Double?
    /// A formatted traceback (Python's `exc_text`), when sent.
    public var exceptionText: String?
    /// The wire format the record came in.
    public var format: Format

    public init(level: String, levelNumber: Int? = nil, loggerName: String, message: String,
                processID: Int? = nil, processName: String? = nil, source: String? = nil,
                created: Double? = nil, exceptionText: String? = nil, format: Format) {
        self.level = level
        self.levelNumber = levelNumber
        self.loggerName = loggerName
        self.message = message
        self.processID = processID
        self.processName = processName
        self.source = source
        self.created = created
        self.exceptionText = exceptionText
        self.format = format
    }
}

extension LogRecord {
    private static let pythonLevels: [(number: Int, name: String)] = [
        (50, "CRITICAL"), (40, "ERROR"), (30, "WARNING"), (20, "INFO"), (10, "DEBUG"), (0, "NOTSET"),
    ]

    /// Python's name for a numeric level ("Level 15" when it has none).
    static func levelName(forNumber number: Int) -> String {
        pythonLevels.first { $0.number == number }?.name ?? "Level \(number)"
    }

    /// A level name as senders spell it ("warn", "Info", "fatal") turned into Python's spelling, with
    /// its number when it is one of Python's.
    static func normalizedLevel(_ name: String) -> (name: String, number: Int?) {
        var upper = name.uppercased()
        switch upper {
        case "WARN": upper = "WARNING"
        case "FATAL": upper = "CRITICAL"
        default: break
        }
        return (upper, pythonLevels.first { $0.name == upper }?.number)
    }
}
