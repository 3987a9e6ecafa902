import Dispatch
import Logging
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A thread of its own, which never runs plugin code, that notices a plugin callback holding an
/// event loop (or the control thread) longer than a threshold, and says so: one line when the
/// call crosses the threshold, one when it finally returns.
///
/// A blocked event loop holds every connection on it, of every service; nothing else would say
/// why. The threads in plugin code only publish what they run (`CallbackSlot`); the watchdog
/// samples every slot four times per threshold.
public final class CallbackWatchdog: Sendable {
    public let threshold: Duration
    private let registry: CallbackRegistry
    private let logger: Logger
    private let clock = ContinuousClock()
    private let started: ContinuousClock.Instant
    /// One detector per slot, by identity; only the watchdog thread changes them, `runningCalls`
    /// reads them from others.
    private let detectors = Mutex<[ObjectIdentifier: (slot: CallbackSlot, detector: StuckCallDetector)]>([:])
    private let stopping = DispatchSemaphore(value: 0)
    private let isStopped = Atomic<Bool>(false)

    /// Starts watching. `threshold` must be positive.
    public init(threshold: Duration, registry: CallbackRegistry = .shared, logger: Logger) {
        self.threshold = threshold
        self.registry = registry
        self.logger = logger
        started = clock.now
        let interval = threshold / 4
        startThread(named: "cynic-watchdog") { [self] in
            while stopping.wait(timeout: .now() + .nanoseconds(Int(interval.nanoseconds))) == .timedOut {
                sampleOnce()
            }
        }
    }

    public func stop() {
        guard !isStopped.exchange(true, ordering: .relaxed) else { return }
        stopping.signal()
    }

    /// Every plugin call running now that has run for at least the threshold, one phrase each:
    /// "conn_open of plugin 'x' (service y) on thread NIO-ELT-0-#1, for 3.2 s".
    public func stuckCalls() -> [String] {
        let now = clock.now - started
        return detectors.withLock { detectors in
            detectors.values.compactMap { entry -> String? in
                guard let (call, elapsed) = entry.detector.current(now: now), elapsed >= threshold else { return nil }
                return "\(registry.describe(call)) on thread \(entry.slot.threadName), for \(Self.seconds(elapsed))"
            }.sorted()
        }
    }

    private func sampleOnce() {
        let now = clock.now - started
        var reports: [(CallbackSlot, StuckCallDetector.Report)] = []
        let slots = registry.allSlots
        detectors.withLock { detectors in
            for slot in slots {
                let (sequence, running) = slot.sample()
                let key = ObjectIdentifier(slot)
                var detector = detectors[key]?.detector ?? StuckCallDetector(threshold: threshold)
                if let report = detector.observe(sequence: sequence, running: running, now: now) {
                    reports.append((slot, report))
                }
                detectors[key] = (slot, detector)
            }
        }
        // Logged outside the lock: a slow console must not hold up `stuckCalls`.
        for (slot, report) in reports {
            switch report {
            case .stuck(let call, let elapsed):
                logger.warning("slow plugin callback: \(registry.describe(call)) has been running for \(Self.seconds(elapsed)) on thread \(slot.threadName); every connection on that thread waits until it returns")
            case .returned(let call, let elapsed):
                logger.warning("slow plugin callback: \(registry.describe(call)) returned after \(Self.seconds(elapsed))")
            }
        }
    }

    /// "3.2 s".
    static func seconds(_ duration: Duration) -> String {
        let tenths = (duration.components.seconds * 10) + duration.components.attoseconds / 100_000_000_000_000_000
        return "\(tenths / 10).\(tenths % 10) s"
    }
}

extension Duration {
    var nanoseconds: Int64 {
        components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000
    }
}

/// A detached POSIX thread running `body`: the watchdog must not share a thread with anything
/// that could be blocked by a plugin (an event loop, Dispatch's or Swift's pools).
private func startThread(named name: String, _ body: @escaping @Sendable () -> Void) {
    final class Body {
        let run: @Sendable () -> Void
        let name: String
        init(_ run: @escaping @Sendable () -> Void, name: String) { self.run = run; self.name = name }
    }
    let context = Unmanaged.passRetained(Body(body, name: name)).toOpaque()
    var thread = pthread_t()
    let status = pthread_create(&thread, nil, { raw in
        let body = Unmanaged<Body>.fromOpaque(raw!).takeRetainedValue()
        // Named through /proc (pthread_setname_np is not imported), so `top -H` and the forced
        // exit's line can tell it from the event loops.
        let fd = open("/proc/thread-self/comm", O_WRONLY)
        if fd >= 0 {
            _ = body.name.withCString { write(fd, $0, strlen($0)) }
            close(fd)
        }
        body.run()
        return nil
    }, context)
    precondition(status == 0, "cannot start the \(name) thread: error \(status)")
    pthread_detach(thread)
}
