/// Decides, from samples of one thread's `CallbackSlot`, when a plugin call has run too long and
/// when it returned: a pure state machine, driven by the watchdog's clock (or a test's).
///
/// A call is stuck when its sequence has not moved, while non-idle, for at least `threshold`.
/// Each episode is reported once when it crosses the threshold and once when it ends, however
/// many samples it spans.
public struct StuckCallDetector: Sendable {
    public enum Report: Equatable, Sendable {
        /// The call has been running for `elapsed` (at least the threshold).
        case stuck(RunningCall, elapsed: Duration)
        /// A call reported stuck returned, after about `elapsed`.
        case returned(RunningCall, elapsed: Duration)
    }

    private enum State: Equatable {
        case idle
        /// First seen at `since`; `reported` once its stuck line is out.
        case running(sequence: UInt64, call: RunningCall, since: Duration, reported: Bool)
    }

    public let threshold: Duration
    private var state: State = .idle

    public init(threshold: Duration) {
        self.threshold = threshold
    }

    /// The call running at the last sample, with how long it has been seen running.
    public func current(now: Duration) -> (call: RunningCall, elapsed: Duration)? {
        guard case .running(_, let call, let since, _) = state else { return nil }
        return (call, now - since)
    }

    /// One sample taken at `now`: at most one report.
    public mutating func observe(sequence: UInt64, running: UInt64, now: Duration) -> Report? {
        let call = RunningCall(word: running)
        switch state {
        case .running(let seen, _, let since, let reported) where call != nil && seen == sequence:
            // The same call still: the latest word is the settled one (see CallbackSlot).
            let elapsed = now - since
            let crossed = !reported && elapsed >= threshold
            state = .running(sequence: sequence, call: call!, since: since, reported: reported || crossed)
            return crossed ? .stuck(call!, elapsed: elapsed) : nil
        case .running(_, let previous, let since, let reported):
            // It returned (and maybe another started) since the last sample.
            state = call.map { .running(sequence: sequence, call: $0, since: now, reported: false) } ?? .idle
            return reported ? .returned(previous, elapsed: now - since) : nil
        case .idle:
            if let call { state = .running(sequence: sequence, call: call, since: now, reported: false) }
            return nil
        }
    }
}
