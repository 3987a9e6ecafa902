import CynicRuntime
import Dispatch
import Foundation
import Logging
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// `--isolate`: runs the services in a worker process and starts a new one within a second when
/// it crashes, so a plugin that dereferences NULL takes down one worker, not cynic.
///
/// The supervisor runs no plugin code. It keeps a copy of every listening socket the worker
/// binds (connections that arrive while a worker restarts wait in the kernel's backlog for the
/// next one), the generations that crashed a worker (`WorkerSupervision` decides), and reads,
/// from memory shared with the worker (`SharedCallbackTable`), which plugin call the worker died
/// in. Its control API address is relayed to the worker's (`APIRelay`).
public final class Supervisor: Sendable {
    private let arguments: [String]
    private let apiSocket: String?
    private let logger: Logger
    private let clock = ContinuousClock()
    private let started: ContinuousClock.Instant
    private let machine = Mutex(WorkerSupervision())
    /// The listening socket of each service, as the worker last said.
    private let listeners = Mutex<[String: Int32]>([:])
    /// The services the worker last said it wants.
    private let wanted = Mutex<WantedServices?>(nil)
    private let worker = Mutex<pid_t?>(nil)
    /// Wakes a restart that waits out its backoff, when told to stop.
    private let stopping = DispatchSemaphore(value: 0)
    private let finished = Mutex<(status: Int32?, waiter: CheckedContinuation<Int32, Never>?)>((nil, nil))

    /// `arguments`: the worker's command line after the executable (the supervisor's own,
    /// without `--isolate`). `apiSocket`: where the worker serves the control API, if any.
    public init(arguments: [String], apiSocket: String?, logger: Logger) {
        self.arguments = arguments
        self.apiSocket = apiSocket
        self.logger = logger
        started = clock.now
    }

    private var now: Duration { clock.now - started }

    /// Starts the first worker and supervises until the supervision ends; returns the status to
    /// exit with.
    public func run() async -> Int32 {
        // A thread of its own that lives as long as the supervision: the worker asks to die with
        // the thread that started it (PR_SET_PDEATHSIG), and waitpid blocks.
        Thread.detachNewThread { [self] in supervise() }
        return await withCheckedContinuation { continuation in
            let done = finished.withLock { state -> Int32? in
                if let status = state.status { return status }
                state.waiter = continuation
                return nil
            }
            if let done { continuation.resume(returning: done) }
        }
    }

    /// SIGTERM or SIGINT: the worker stops as cynic stops (draining), and the supervisor with it.
    /// A second one reaches the worker too, which then exits at once.
    public func stop() {
        machine.withLock { $0.stop() }
        if let pid = worker.withLock({ $0 }) {
            kill(pid, SIGTERM)
        } else {
            stopping.signal()
        }
    }

    /// SIGHUP: the worker reloads its configuration.
    public func reload() {
        if let pid = worker.withLock({ $0 }) { kill(pid, SIGHUP) }
    }

    private func finish(_ status: Int32) {
        let waiter = finished.withLock { state in
            state.status = status
            defer { state.waiter = nil }
            return state.waiter
        }
        listeners.withLock { held in
            held.values.forEach { close($0) }
            held = [:]
        }
        waiter?.resume(returning: status)
    }

    // MARK: The supervising thread

    private func supervise() {
        var crashedAt: Duration?
        while true {
            let table: SharedCallbackTable
            let process: WorkerProcess
            do {
                table = try SharedCallbackTable.create()
                process = try WorkerProcess.spawn(arguments: arguments)
                let held = listeners.withLock { $0.sorted { $0.key < $1.key } }
                let quarantine = machine.withLock { $0.quarantine }
                try process.link.send(WorkerStart(supervisor: getpid(), apiSocket: apiSocket, quarantine: quarantine,
                                                  listeners: held.map(\.key), services: wanted.withLock { $0 }),
                                      descriptors: [table.descriptor] + held.map(\.value))
            } catch {
                logger.error("cannot start a worker: \(error)")
                finish(1)
                return
            }
            let stopRequested = machine.withLock { machine in
                machine.started(at: now)
                return machine.isStopping
            }
            worker.withLock { $0 = process.processIdentifier }
            if stopRequested { kill(process.processIdentifier, SIGTERM) }
            let reportsEnded = DispatchSemaphore(value: 0)
            let link = process.link, previousCrash = crashedAt
            Thread.detachNewThread { [self] in
                readReports(from: link, crashedAt: previousCrash)
                reportsEnded.signal()
            }
            let exit = process.waitForExit()
            worker.withLock { $0 = nil }
            // Its last reports are still in the socket: read them all (EOF comes once the worker is
            // gone) before deciding anything.
            reportsEnded.wait()
            let crash = table.crash()
            let blame = crash.flatMap { crash in
                crash.label.map { WorkerSupervision.Blame(plugin: $0.plugin, file: $0.file, version: $0.version,
                                                          callback: crash.callback.name, service: $0.service) }
            }
            let decision = machine.withLock { $0.ended(exit, blame: blame, at: now) }
            switch decision {
            case .exit(let status):
                finish(status)
                return
            case .restart(let delay, let quarantined):
                crashedAt = now
                logger.error("\(Self.crashLine(exit, crash: crash, blame: blame))")
                if let quarantined {
                    logger.warning("plugin \(quarantined.plugin) (file \(quarantined.file)) is refused from now on: it crashed the worker; a new version of the file is loaded again")
                }
                guard delay > .zero else { continue }
                logger.warning("the worker keeps crashing: the next starts in \(Self.seconds(delay))")
                if stopping.wait(timeout: .now() + .milliseconds(Int(delay.components.seconds * 1000
                                                                     + delay.components.attoseconds / 1_000_000_000_000_000))) == .success {
                    finish(0)
                    return
                }
            }
        }
    }

    /// "worker crashed (SIGSEGV) in plugin crasher (file /p/crasher.so), conn_open, service crasher; restarting".
    static func crashLine(_ exit: WorkerSupervision.Exit, crash: SharedCallbackTable.Crash?,
                          blame: WorkerSupervision.Blame?) -> String {
        let how: String
        if case .exited = exit { how = "worker exited (\(exit))" } else { how = "worker crashed (\(exit))" }
        if let blame {
            let guess = crash?.noted == false ? " (the only plugin call running)" : ""
            return "\(how) in plugin \(blame.plugin) (file \(blame.file)), \(blame.callback), service \(blame.service)\(guess); restarting"
        }
        if let crash {
            return "\(how) in \(crash.callback.name) of a plugin it cannot name, on thread \(crash.threadName); restarting"
        }
        return "\(how), not in plugin code; restarting"
    }

    /// The worker's reports, until it is gone.
    private func readReports(from link: MessageSocket, crashedAt: Duration?) {
        while true {
            let received: (WorkerReport, [Int32])?
            do {
                received = try link.receive(WorkerReport.self)
            } catch {
                logger.warning("worker: \(error)")
                // A message that could not be read is skipped; a broken link ends the reports,
                // and the worker's exit is heard from waitpid.
                if error.linkBroken { return } else { continue }
            }
            guard let received else { return }
            let (report, descriptors) = received
            switch report {
            case .listener(let service):
                guard let descriptor = descriptors.first else { continue }
                descriptors.dropFirst().forEach { close($0) }
                listeners.withLock { held in
                    if let older = held.updateValue(descriptor, forKey: service), older != descriptor { close(older) }
                }
            case .ready:
                descriptors.forEach { close($0) }
                machine.withLock { $0.ready(at: now) }
                if let crashedAt {
                    logger.info("worker restarted: serving again \(Self.seconds(now - crashedAt)) after the crash")
                }
            case .services(let services):
                descriptors.forEach { close($0) }
                wanted.withLock { $0 = services }
            case .listening(let services):
                descriptors.forEach { close($0) }
                let wanted = Set(services)
                listeners.withLock { held in
                    for (service, descriptor) in held where !wanted.contains(service) {
                        close(descriptor)
                        held[service] = nil
                    }
                }
            }
        }
    }

    /// "0.42 s".
    static func seconds(_ duration: Duration) -> String {
        let milliseconds = duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
        return "\(milliseconds / 1000).\(String(format: "%02d", (milliseconds % 1000) / 10)) s"
    }
}
