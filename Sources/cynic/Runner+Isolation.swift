import CynicIsolation
import CynicRuntime

extension Runner {
    /// Under `--isolate`: tells the supervisor every service has started, then, whenever they
    /// change (checked every 100 ms: a change made just before a crash can be lost), which
    /// services listen, so it keeps the sockets of those alone, and which are wanted, so the
    /// next worker starts from them.
    func startReporting(server: Server, to worker: WorkerLink) -> Task<Void, Never> {
        Task {
            worker.ready(listening: await Self.listening(server))
            while !Task.isCancelled {
                let wanted = await server.wantedServices()
                worker.report(wanted: WantedServices(yaml: wanted.yaml, disabled: wanted.disabled))
                worker.report(listening: await Self.listening(server))
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    /// What the control API changed before the last worker crashed, applied again.
    func restoreServices(of server: Server, for worker: WorkerLink) async {
        guard let wanted = worker.start.services else { return }
        await server.restoreServices(yaml: wanted.yaml, disabled: wanted.disabled)
    }

    private static func listening(_ server: Server) async -> [String] {
        await server.runningServices.filter(\.isListening).map(\.spec.name).sorted()
    }
}
