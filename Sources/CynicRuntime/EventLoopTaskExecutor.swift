import NIOCore

/// Runs tasks on one event loop, so that work started from outside Swift concurrency (a folder
/// watcher's callback) reaches the server without waiting for a thread of the shared
/// cooperative pool, which other code may keep busy.
final class EventLoopTaskExecutor: TaskExecutor, @unchecked Sendable {
    // @unchecked: `loop` is immutable and EventLoop is Sendable.
    private let loop: any EventLoop

    init(_ loop: any EventLoop) {
        self.loop = loop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        loop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
