/// How many connection lines the console shows a second. The console is for a person: past a
/// hundred lines a second nobody reads them, and writing each costs more than serving the
/// connection it describes. Past the budget the lines of the second are counted instead, and one
/// line says how many there were; every record is still in the event log (`GET /events`,
/// `--events FILE`).
///
/// A small state machine over time, tested without a clock: `admit` for each record as it is
/// written, `close` when the writer looks again after the second is over.
struct ConsoleLineBudget {
    /// Lines shown a second; the rest counted.
    let perSecond: Int
    static let window: UInt64 = 1_000_000_000

    private var windowStart: UInt64?
    private var shown = 0
    private(set) var held = 0

    init(perSecond: Int = 100) {
        self.perSecond = perSecond
    }

    /// Whether the record written at `now` (nanoseconds, monotonic) gets its line, and how many
    /// lines the window that ended before it held back (0: none to say).
    mutating func admit(at now: UInt64) -> (show: Bool, heldBefore: Int) {
        let heldBefore = close(at: now)
        if windowStart == nil { windowStart = now }
        guard shown < perSecond else {
            held += 1
            return (false, heldBefore)
        }
        shown += 1
        return (true, heldBefore)
    }

    /// Ends the window if it is over at `now`: returns the lines it held back, and starts afresh.
    mutating func close(at now: UInt64) -> Int {
        guard let start = windowStart, now &- start >= Self.window else { return 0 }
        defer {
            windowStart = nil
            shown = 0
            held = 0
        }
        return held
    }
}
