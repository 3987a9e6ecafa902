import CIsolation
import CynicRuntime
import Foundation
import Logging
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The worker's side of `--isolate`: what the supervisor handed it at start, and the reports
/// it owes the supervisor.
public final class WorkerLink: Sendable {
    public let start: WorkerStart
    private let link: MessageSocket
    /// Kept mapped as long as the process lives: its slots are written on every plugin call.
    private let table: SharedCallbackTable
    private let lastListening = Mutex<[String]?>(nil)
    private let lastWanted = Mutex<WantedServices?>(nil)

    /// Joins the supervisor on `descriptor`: asks to die with it, reads what it hands over,
    /// shares the callback slots with it and serves on its listening sockets. Before any plugin
    /// is loaded.
    public static func join(descriptor: Int32) throws(IsolationError) -> WorkerLink {
        guard cynic_die_with_parent() == 0 else { throw IsolationError("prctl(PR_SET_PDEATHSIG): \(errnoText())") }
        // Our own children (a plugin may start some) must not hold the link open.
        _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC)
        let link = MessageSocket(descriptor: descriptor)
        guard let received = try link.receive(WorkerStart.self) else {
            throw IsolationError("the supervisor is gone")
        }
        let (start, descriptors) = received
        // It died before we could ask to die with it: we were handed to init.
        guard getppid() == start.supervisor else { _exit(1) }
        guard descriptors.count == start.listeners.count + 1 else {
            descriptors.forEach { close($0) }
            throw IsolationError("the supervisor sent \(descriptors.count) descriptors for \(start.listeners.count) listeners")
        }
        let table: SharedCallbackTable
        do {
            table = try SharedCallbackTable(mapping: descriptors[0])
        } catch {
            descriptors.dropFirst().forEach { close($0) }
            throw IsolationError("\(error)")
        }
        // A dead worker leaves its API's socket file behind, which would refuse our bind.
        if let path = start.apiSocket { unlink(path) }
        table.noteCrashes()
        CallbackRegistry.shared.publish(to: table)
        let worker = WorkerLink(start: start, link: link, table: table)
        let inherited = zip(start.listeners, descriptors.dropFirst()).map { ListenerHandOff.Listener(service: $0, descriptor: $1) }
        ListenerHandOff.shared.activate(inherited: inherited) { [worker] listener in
            worker.send(.listener(service: listener.service), descriptors: [listener.descriptor])
        }
        worker.exitWithSupervisor()
        return worker
    }

    private init(start: WorkerStart, link: MessageSocket, table: SharedCallbackTable) {
        self.start = start
        self.link = link
        self.table = table
    }

    /// Every service has started; `listening` are those that listen.
    public func ready(listening: [String]) {
        ListenerHandOff.shared.closeUnclaimed()
        send(.ready)
        report(listening: listening)
    }

    /// The services that listen now, told to the supervisor when they changed.
    public func report(listening: [String]) {
        let changed = lastListening.withLock { last in
            defer { last = listening }
            return last != listening
        }
        if changed { send(.listening(listening)) }
    }

    /// The services wanted now, told to the supervisor when they changed.
    public func report(wanted: WantedServices) {
        let changed = lastWanted.withLock { last in
            defer { last = wanted }
            return last != wanted
        }
        if changed { send(.services(wanted)) }
    }

    private func send(_ report: WorkerReport, descriptors: [Int32] = []) {
        do {
            try link.send(report, descriptors: descriptors)
        } catch where error.linkBroken {
            // The supervisor is gone: exitWithSupervisor ends this process.
        } catch {
            Logger(label: "cynic").warning("cannot tell the supervisor what changed: \(error); a restart would not keep it")
        }
    }

    /// The supervisor never writes after the start: EOF on the link means it is gone, and a
    /// worker never outlives it (PR_SET_PDEATHSIG covers a supervisor killed outright).
    private func exitWithSupervisor() {
        let descriptor = link.descriptor
        Thread.detachNewThread {
            var byte: UInt8 = 0
            while true {
                let count = recv(descriptor, &byte, 1, 0)
                if count < 0, errno == EINTR { continue }
                if count <= 0 { break }
            }
            let line = "cynic worker: the supervisor is gone; exiting\n"
            _ = line.withCString { write(2, $0, strlen($0)) }
            _exit(1)
        }
    }
}
