import CynicRuntime
import Dispatch
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Ends the process when stopping cannot finish by itself: a plugin spinning on an event loop
/// keeps NIO's `shutdownGracefully` from ever returning, so the exit must come from a thread that
/// no event loop, no actor and no Swift task can hold up.
///
/// Armed when stopping starts, it waits on a thread of its own until the deadline, then says
/// which plugin code was still running, removes the files cynic leaves while it runs (the private
/// copies of plugins, the status socket) and calls `_exit`.
/// A second stop signal takes the same way out at once.
final class ForcedExit: Sendable {
    private let watchdog: CallbackWatchdog?
    /// Removes what a normal exit removes: files only, nothing that waits for an event loop.
    private let removeFiles: @Sendable () -> Void
    private let disarmed = DispatchSemaphore(value: 0)
    /// Once one way out is taken (the deadline, a second signal), the other does nothing.
    private let exiting = Atomic<Bool>(false)

    init(watchdog: CallbackWatchdog?, removeFiles: @escaping @Sendable () -> Void) {
        self.watchdog = watchdog
        self.removeFiles = removeFiles
    }

    /// Exits with status 1 in `seconds` unless disarmed first.
    func arm(after deadline: Duration) {
        let seconds = Double(deadline.components.seconds) + Double(deadline.components.attoseconds) / 1e18
        // A thread of its own rather than a Dispatch queue: nothing else can be queued ahead of it.
        Thread.detachNewThread { [self] in
            guard disarmed.wait(timeout: .now() + seconds) == .timedOut else { return }
            exitNow("stopping did not finish within \(formatted(seconds)) s", status: 1)
        }
    }

    /// Stopping finished normally: the deadline no longer applies.
    func disarm() {
        disarmed.signal()
    }

    /// Exits now. Any plugin call still running is named, and makes the status 1 whatever
    /// `status` says: cynic abandons a thread it could not stop.
    func exitNow(_ reason: String, status: Int32) {
        guard !exiting.exchange(true, ordering: .relaxed) else { return }
        let running = watchdog?.stuckCalls() ?? CallbackRegistry.shared.runningCalls()
        let line = running.isEmpty
            ? "cynic: \(reason); exiting\n"
            : "cynic: \(reason); exiting without waiting for plugin code still running: \(running.joined(separator: "; "))\n"
        removeFiles()
        fflush(nil)  // what was printed so far, then the line straight to the descriptor
        _ = line.withCString { write(2, $0, strlen($0)) }
        _exit(running.isEmpty ? status : 1)
    }

    private func formatted(_ seconds: Double) -> String {
        seconds == seconds.rounded() ? "\(Int(seconds))" : "\(seconds)"
    }
}
