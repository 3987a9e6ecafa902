import CynicIsolation
import CynicRuntime
import Testing

/// The supervisor's decisions when its worker ends, on virtual time: no process, no sleep.
@Suite("Worker supervision")
struct WorkerSupervisionTests {
    func s(_ seconds: Double) -> Duration { .milliseconds(Int(seconds * 1000)) }

    let crasher = WorkerSupervision.Blame(plugin: "crasher", file: "/p/crasher.so", version: "v1", callback: "conn_open",
                                          service: "crashy")
    let segv = WorkerSupervision.Exit.signalled(11)

    @Test("a worker that exits with a status before it is ready failed to start: the supervisor exits with its status")
    func failedStart() {
        var machine = WorkerSupervision()
        machine.started(at: s(0))
        #expect(machine.ended(.exited(status: 1), blame: nil, at: s(0.3)) == .exit(status: 1))
    }

    @Test("the first crash restarts at once and quarantines the generation it was in; the quarantine is kept")
    func firstCrash() {
        var machine = WorkerSupervision()
        machine.started(at: s(0))
        machine.ready(at: s(0.5))
        let decision = machine.ended(segv, blame: crasher, at: s(3))
        let entry = PluginQuarantine.Entry(plugin: "crasher", file: "/p/crasher.so", version: "v1",
                                           crash: "SIGSEGV in conn_open, service crashy")
        #expect(decision == .restart(after: .zero, quarantined: entry))
        #expect(machine.quarantine.entries == [entry])
        machine.started(at: s(3))
        machine.ready(at: s(3.4))
        // The same generation again (it was loaded some other way): nothing new to quarantine,
        // and one crash is not yet a loop.
        #expect(machine.ended(segv, blame: crasher, at: s(4)) == .restart(after: .zero, quarantined: nil))
        #expect(machine.quarantine.entries.count == 1)
    }

    @Test("a crash during start-up (a plugin's configure) is a crash, not a failed start")
    func crashWhileStarting() {
        var machine = WorkerSupervision()
        machine.started(at: s(0))
        let creating = WorkerSupervision.Blame(plugin: "crasher", file: "/p/crasher.so", version: "v1",
                                               callback: "create/configure", service: "crashy")
        guard case .restart(let delay, let entry?) = machine.ended(segv, blame: creating, at: s(0.2)), delay == .zero else {
            Issue.record("expected an immediate restart with a quarantine")
            return
        }
        #expect(entry.crash == "SIGSEGV in create/configure, service crashy")
    }

    @Test("crashes that quarantine nothing, close together, back off: 0, 0.25, 0.5, 1, 2, 4, 5, 5 s")
    func crashLoop() {
        var machine = WorkerSupervision()
        var now = s(0)
        var delays: [Duration] = []
        for _ in 0..<8 {
            machine.started(at: now)
            machine.ready(at: now + s(0.2))
            now += s(1)
            guard case .restart(let delay, nil) = machine.ended(.signalled(9), blame: nil, at: now) else {
                Issue.record("expected a restart")
                return
            }
            delays.append(delay)
            now += delay
        }
        #expect(delays == [s(0), s(0.25), s(0.5), s(1), s(2), s(4), s(5), s(5)])
    }

    @Test("a worker that stayed up long enough ends the loop: its crash restarts at once")
    func settledWorker() {
        var machine = WorkerSupervision()
        for start in [0.0, 1.0, 2.0] {
            machine.started(at: s(start))
            _ = machine.ended(.signalled(9), blame: nil, at: s(start + 0.5))
        }
        machine.started(at: s(3))
        machine.ready(at: s(3.5))
        #expect(machine.ended(.signalled(9), blame: nil, at: s(3.5) + WorkerSupervision.settled) == .restart(after: .zero, quarantined: nil))
    }

    @Test("once stopping, the worker's end is the supervisor's, with its status")
    func stopping() {
        var machine = WorkerSupervision()
        machine.started(at: s(0))
        machine.ready(at: s(1))
        machine.stop()
        #expect(machine.isStopping)
        #expect(machine.ended(.exited(status: 0), blame: nil, at: s(2)) == .exit(status: 0))
        var killed = WorkerSupervision()
        killed.stop()
        #expect(killed.ended(.signalled(9), blame: crasher, at: s(2)) == .exit(status: 1))
        #expect(killed.quarantine.entries.isEmpty)
    }

    @Test("a crash the table cannot name still restarts, and its signal is said by name")
    func names() {
        #expect("\(WorkerSupervision.Exit.signalled(11))" == "SIGSEGV")
        #expect("\(WorkerSupervision.Exit.signalled(6))" == "SIGABRT")
        #expect("\(WorkerSupervision.Exit.exited(status: 3))" == "status 3")
    }
}
