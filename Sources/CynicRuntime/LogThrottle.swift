import Logging
import NIOCore
import Synchronization

/// Rate-limits warnings that each client can cause: a hostile client that sends 5,000 bad
/// requests would otherwise write 5,000 lines. The first warning of a kind is logged; the
/// repeats within `window` after it are counted, and said in one line when the window is over
/// ("… and 4,980 more like it in the last 10 s").
///
/// A kind is a fixed name chosen at the call site ("bad request"), never text from a client, so
/// the set of kinds tracked stays small.
public final class LogThrottle: Sendable {
    private struct Window {
        let start: NIODeadline
        /// The warning logged at the start, which the summary refers to.
        let first: String
        var repeats = 0
        var flushScheduled = false
    }

    let window: TimeAmount
    /// Where the summaries go: they speak for many connections, so no one connection's logger.
    private let logger: Logger
    private let now: @Sendable () -> NIODeadline
    private let windows = Mutex<[String: Window]>([:])

    /// `now` is the clock, injected so that tests need not wait out a window.
    public init(window: TimeAmount = .seconds(10), logger: Logger, now: @escaping @Sendable () -> NIODeadline = { .now() }) {
        self.window = window
        self.logger = logger
        self.now = now
    }

    /// Logs `message` with `logger`, unless a warning of `kind` was logged less than `window`
    /// ago: then it is counted. With `loop`, the count is said when the window ends even if no
    /// other warning of the kind comes; without, when the next one comes or `flush` is called.
    public func warning(_ kind: String, _ message: @autoclosure () -> String, logger: Logger, flushOn loop: (any EventLoop)? = nil) {
        let now = now()
        // The message is only built for a warning that is logged: repeats cost a lock and a count.
        var text: String?
        let (summary, flushAt) = windows.withLock { windows -> (String?, NIODeadline?) in
            if var current = windows[kind], now < current.start + window {
                current.repeats += 1
                let firstRepeat = !current.flushScheduled
                current.flushScheduled = true
                windows[kind] = current
                return (nil, firstRepeat ? current.start + window : nil)
            }
            let summary = windows[kind].flatMap(summary(of:))
            text = message()
            windows[kind] = Window(start: now, first: text!)
            return (summary, nil)
        }
        if let summary { self.logger.warning("\(summary)") }
        if let text { logger.warning("\(text)") }
        if let flushAt, let loop {
            loop.scheduleTask(deadline: flushAt) { self.flush() }
        }
    }

    /// Says the count of every window that is over, and forgets those windows.
    public func flush() {
        let now = now()
        let summaries = windows.withLock { windows -> [String] in
            let over = windows.filter { now >= $0.value.start + window }
            for kind in over.keys { windows[kind] = nil }
            return over.values.compactMap(summary(of:))
        }
        for summary in summaries { logger.warning("\(summary)") }
    }

    private func summary(of window: Window) -> String? {
        guard window.repeats > 0 else { return nil }
        let seconds = Double(self.window.nanoseconds) / 1e9
        let span = seconds == seconds.rounded() ? "\(Int(seconds)) s" : "\(seconds) s"
        return "\(window.first) … and \(Self.grouped(window.repeats)) more like it in the last \(span)"
    }

    /// 4980 as "4,980".
    static func grouped(_ number: Int) -> String {
        var digits = String(number.magnitude)
        var groups: [Substring] = []
        while digits.count > 3 {
            groups.insert(Substring(digits.suffix(3)), at: 0)
            digits.removeLast(3)
        }
        groups.insert(Substring(digits), at: 0)
        return (number < 0 ? "-" : "") + groups.joined(separator: ",")
    }
}
