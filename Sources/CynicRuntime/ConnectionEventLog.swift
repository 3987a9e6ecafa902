import DequeModule
import Dispatch
import Logging
import Synchronization
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// Every client connection's record, as connections end: numbered, kept (the last `capacity`),
/// handed to whoever asks or waits, counted into the metrics, and written out — one console line
/// each, and one JSON line each to the events file when there is one.
///
/// `add` is called on event loops: it takes one lock, never blocks and does no I/O. The console
/// and file lines are written by a queue of their own, whose backlog is bounded: if it falls
/// behind, records are dropped from the output (not from the log) and one line says how many.
public final class ConnectionEventLog: Sendable {
    public static let defaultCapacity = 10_000
    /// Records a subscriber may fall behind by before it loses the oldest.
    public static let subscriberBuffer = 1_000
    /// Records waiting for the writer before new ones are dropped from the output.
    public static let writerBacklog = 10_000

    /// Which records a query wants.
    struct Filter: Sendable {
        let service: String?
        let afterID: UInt64?
        let since: Date?

        func matches(_ record: ConnectionRecord) -> Bool {
            (service == nil || record.service == service) && (afterID.map { record.id > $0 } ?? true)
                && (since.map { record.started >= $0 } ?? true)
        }
    }

    private enum Waiter {
        /// `wait` has taken its token and not yet suspended.
        case pending
        case waiting(Filter, CheckedContinuation<Void, Never>)
        /// Resumed, timed out or cancelled: `wait` returns what matches now.
        case released
    }

    private struct State {
        var records: Deque<ConnectionRecord> = []
        var lastID: UInt64 = 0
        var nextToken: UInt64 = 0
        var waiters: [UInt64: Waiter] = [:]
        var subscribers: [UInt64: (service: String?, continuation: AsyncStream<ConnectionRecord>.Continuation)] = [:]

        /// The last `limit` records matching, oldest first.
        func matching(_ filter: Filter, limit: Int) -> [ConnectionRecord] {
            var found: [ConnectionRecord] = []
            for record in records.reversed() {
                if let after = filter.afterID, record.id <= after { break }  // ids only grow
                guard found.count < limit else { break }
                if filter.matches(record) { found.append(record) }
            }
            return found.reversed()
        }
    }

    public let capacity: Int
    private let state = Mutex(State())
    private let metrics: CynicMetrics?
    private let output: EventOutput

    /// `file`, when given, gets one JSON line per record, appended; it is opened here, and one
    /// that cannot be opened throws with one line saying why. `logger` gets the console lines.
    public init(capacity: Int = defaultCapacity, logger: Logger, file: String? = nil,
                metrics: CynicMetrics? = nil) throws(EventsFileError) {
        self.capacity = max(1, capacity)
        self.metrics = metrics
        output = try EventOutput(logger: logger, file: file)
    }

    /// Takes a connection's record, from any thread; returns the id it was given.
    @discardableResult
    public func add(_ record: ConnectionRecord) -> UInt64 {
        var record = record
        state.withLock { state in
            state.lastID += 1
            record.id = state.lastID
            if state.records.count >= capacity { state.records.removeFirst() }
            state.records.append(record)
            for (token, waiter) in state.waiters {
                guard case .waiting(let filter, let continuation) = waiter, filter.matches(record) else { continue }
                state.waiters[token] = .released
                continuation.resume()
            }
            // Under the lock, so that every subscriber sees the records in id order.
            for subscriber in state.subscribers.values where subscriber.service == nil || subscriber.service == record.service {
                subscriber.continuation.yield(record)
            }
        }
        metrics?.connectionEnded(record)
        output.write(record)
        return record.id
    }

    /// The last `limit` records matching, oldest first, and the id of the newest record in the
    /// log (matching or not), to ask for what comes after. `since` compares with `started`.
    public func records(service: String? = nil, afterID: UInt64? = nil, since: Date? = nil,
                        limit: Int = 100) -> (records: [ConnectionRecord], lastID: UInt64) {
        let filter = Filter(service: service, afterID: afterID, since: since)
        return state.withLock { ($0.matching(filter, limit: max(0, limit)), $0.lastID) }
    }

    /// As `records`, but when none match yet, waits until one arrives or `timeout` passes (then
    /// the answer may be empty). A cancelled task returns at once with what matches.
    public func wait(service: String? = nil, afterID: UInt64? = nil, since: Date? = nil, limit: Int = 100,
                     timeout: Duration) async -> (records: [ConnectionRecord], lastID: UInt64) {
        let filter = Filter(service: service, afterID: afterID, since: since)
        guard timeout > .zero else { return records(service: service, afterID: afterID, since: since, limit: limit) }
        let token = state.withLock { state in
            state.nextToken += 1
            state.waiters[state.nextToken] = .pending
            return state.nextToken
        }
        let timer = Task { [weak self] in
            do { try await Task.sleep(for: timeout) } catch { return }
            self?.release(token)
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = state.withLock { state -> Bool in
                    // Checked under the lock that `add` takes: a record cannot slip in between.
                    guard case .pending = state.waiters[token], state.matching(filter, limit: 1).isEmpty else {
                        state.waiters[token] = .released
                        return true
                    }
                    state.waiters[token] = .waiting(filter, continuation)
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            release(token)
        }
        timer.cancel()
        // From here on a late timer or cancellation finds no entry and does nothing.
        _ = state.withLock { $0.waiters.removeValue(forKey: token) }
        return records(service: service, afterID: afterID, since: since, limit: limit)
    }

    private func release(_ token: UInt64) {
        state.withLock { state in
            switch state.waiters[token] {
            case .pending:
                state.waiters[token] = .released
            case .waiting(_, let continuation):
                state.waiters[token] = .released
                continuation.resume()
            case .released, nil:
                break
            }
        }
    }

    /// Every record from now on (of `service`, when given), in order, until the stream's consumer
    /// goes away; one that falls `subscriberBuffer` records behind loses the oldest.
    public func subscribe(service: String? = nil) -> AsyncStream<ConnectionRecord> {
        let (stream, continuation) = AsyncStream.makeStream(of: ConnectionRecord.self,
                                                            bufferingPolicy: .bufferingNewest(Self.subscriberBuffer))
        let token = state.withLock { state in
            state.nextToken += 1
            state.subscribers[state.nextToken] = (service, continuation)
            return state.nextToken
        }
        continuation.onTermination = { [weak self] _ in
            // Released outside the lock: dropping a continuation must never run inside it.
            let removed = self?.state.withLock { $0.subscribers.removeValue(forKey: token) }
            _ = removed
        }
        return stream
    }

    /// Ends every subscription and waits until every line is written; the file is closed. Records
    /// added afterwards are kept and handed out, not written.
    public func finish() async {
        endSubscriptions()
        await output.finish()
    }

    /// Ends every subscription (their streams finish); the log and its file go on. The control
    /// API does this when it stops, so that a stream's answer ends while its event loop runs.
    public func endSubscriptions() {
        let subscribers = state.withLock { state in
            defer { state.subscribers.removeAll() }
            return Array(state.subscribers.values)
        }
        for subscriber in subscribers { subscriber.continuation.finish() }
    }
}

/// An events file that cannot be opened, in one line.
public struct EventsFileError: Error, Sendable, CustomStringConvertible {
    public let description: String
}

/// The console line and the file line of every record, written off the event loops by one
/// serial queue, in order, with a bounded backlog.
///
/// Records wait in `pending` and the queue takes them in batches: at thousands of connections a
/// second, waking a thread per record would cost more than writing the records (the writer was
/// 15 % of cynic's CPU under `Connection: close` load). A batch is asked for only when the
/// writer is not already on its way.
private final class EventOutput: Sendable {
    private let logger: Logger
    private let path: String?
    private let descriptor: Int32
    private let queue = DispatchQueue(label: "cynic.events")
    /// Records not yet taken by the writer, and whether a batch is already asked for.
    private let pending = Mutex<(records: [ConnectionRecord], asked: Bool)>(([], false))
    /// The console's lines a second; touched only on `queue`.
    private let console = Mutex(ConsoleLineBudget())
    /// A look at the held lines is already asked for.
    private let heldLookPending = Atomic<Bool>(false)
    /// How long a record may wait for the writer: the records of that time go in one batch.
    static let batchDelay = DispatchTimeInterval.milliseconds(5)
    /// Records dropped since the last line that said so.
    private let dropped = Atomic<Int>(0)
    private let finished = Atomic<Bool>(false)
    /// A write to the file failed: said once.
    private let writeFailed = Atomic<Bool>(false)

    init(logger: Logger, file: String?) throws(EventsFileError) {
        self.logger = logger
        path = file
        guard let file else {
            descriptor = -1
            return
        }
        descriptor = open(file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw EventsFileError(description: "cannot open the events file \(file): \(String(cString: strerror(errno)))")
        }
    }

    func write(_ record: ConnectionRecord) {
        guard !finished.load(ordering: .relaxed) else { return }
        let ask = pending.withLock { pending -> Bool in
            guard pending.records.count < ConnectionEventLog.writerBacklog else {
                dropped.add(1, ordering: .relaxed)
                return false
            }
            pending.records.append(record)
            defer { pending.asked = true }
            return !pending.asked
        }
        guard ask else { return }
        queue.asyncAfter(deadline: .now() + Self.batchDelay) { self.writeBatch() }
    }

    /// Writes what is pending, in order, until nothing is.
    private func writeBatch() {
        while true {
            let batch = pending.withLock { pending -> [ConnectionRecord] in
                if pending.records.isEmpty { pending.asked = false }
                defer { pending.records = [] }
                return pending.records
            }
            guard !batch.isEmpty else { return }
            let missed = dropped.exchange(0, ordering: .relaxed)
            if missed > 0 {
                logger.warning("events: \(missed) connection record(s) not written: the writer fell behind (they are still in the event log)")
            }
            for record in batch {
                let (show, heldBefore) = console.withLock { $0.admit(at: DispatchTime.now().uptimeNanoseconds) }
                sayHeld(heldBefore)
                if show { logger.info("\(Self.consoleLine(record))", metadata: ["service": "\(record.service)"]) }
            }
            append(batch)
            lookAtHeldLater()
        }
    }

    /// Lines held in this second are said once it is over, even if no record follows: one look
    /// a second later while any are held, never more than one waiting.
    private func lookAtHeldLater() {
        guard console.withLock({ $0.held }) > 0, !heldLookPending.exchange(true, ordering: .relaxed) else { return }
        queue.asyncAfter(deadline: .now() + .nanoseconds(Int(ConsoleLineBudget.window))) {
            self.heldLookPending.store(false, ordering: .relaxed)
            self.sayHeld(self.console.withLock { $0.close(at: DispatchTime.now().uptimeNanoseconds) })
            // A window begun since, still holding: look again once it is over.
            self.lookAtHeldLater()
        }
    }

    private func sayHeld(_ count: Int) {
        guard count > 0 else { return }
        logger.info("… and \(count) more connection(s) in the last second, not shown one by one (every one is in the event log: GET /events, --events FILE)")
    }

    /// The records' JSON lines, in one write where the kernel takes them whole.
    private func append(_ records: [ConnectionRecord]) {
        guard descriptor >= 0, !writeFailed.load(ordering: .relaxed) else { return }
        var lines = ""
        for record in records { lines += record.jsonLine + "\n" }
        var failure: Int32 = 0
        lines.withUTF8 { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = Glibc.write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    failure = errno
                    return
                }
                offset += written
            }
        }
        if failure != 0, !writeFailed.exchange(true, ordering: .relaxed) {
            logger.error("events: cannot write to \(path ?? "?"): \(String(cString: strerror(failure))); no more records are written to it")
        }
    }

    /// "127.0.0.1:51234 peer_closed after 12.5 ms; client 120 B in, 4096 B out; upstream 4096 B
    /// in, 120 B out; shapers latency".
    static func consoleLine(_ record: ConnectionRecord) -> String {
        let end = record.end
        var line = "connection \(record.id) from \(record.peer ?? "?"): \(end.kind.rawValue)"
        if end.endedBy != .peer, end.endedBy != .behaviour { line += " by \(end.endedBy)" }
        if let reason = end.reason { line += " (\(reason))" }
        let milliseconds = (record.durationMilliseconds * 10).rounded() / 10
        line += " after \(milliseconds) ms; client \(record.client.bytesIn) B in, \(record.client.bytesOut) B out"
        if let upstream = record.upstream {
            line += "; upstream \(upstream.bytesIn) B in, \(upstream.bytesOut) B out"
            if !upstream.failed.isEmpty { line += ", \(upstream.failed.count) connect(s) failed" }
        }
        let applied = record.shapers.filter(\.applied).map(\.name)
        if !applied.isEmpty { line += "; shapers \(applied.joined(separator: ", "))" }
        return line
    }

    func finish() async {
        guard !finished.exchange(true, ordering: .relaxed) else { return }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            queue.async {
                // What waits for its batch delay is written now, and what the console held said.
                self.writeBatch()
                self.sayHeld(self.console.withLock { $0.close(at: .max) })
                if self.descriptor >= 0 { close(self.descriptor) }
                continuation.resume()
            }
        }
    }
}
