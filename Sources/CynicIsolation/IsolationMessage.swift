import CynicRuntime

/// What the supervisor tells a worker it starts: one message, the first on their link. Its
/// descriptors are the shared callback table, then one listening socket per name of `listeners`.
public struct WorkerStart: Codable, Sendable, Equatable {
    /// The supervisor's process id: a worker whose parent is another (the supervisor died before
    /// the worker could ask to die with it) exits at once.
    public let supervisor: Int32
    /// Where the worker serves the control API; the supervisor relays its own address there.
    public let apiSocket: String?
    /// The generations that crashed earlier workers.
    public let quarantine: PluginQuarantine
    /// The services whose listening sockets come with the message, in order.
    public let listeners: [String]
    /// The services the last worker wanted, when it said: the next one applies them.
    public let services: WantedServices?

    public init(supervisor: Int32, apiSocket: String?, quarantine: PluginQuarantine, listeners: [String],
                services: WantedServices?) {
        self.supervisor = supervisor
        self.apiSocket = apiSocket
        self.quarantine = quarantine
        self.listeners = listeners
        self.services = services
    }
}

/// A worker's services as the control API left them (`Server.wantedServices()`).
public struct WantedServices: Codable, Sendable, Equatable {
    /// As a configuration file.
    public let yaml: String
    /// Those turned off.
    public let disabled: [String]

    public init(yaml: String, disabled: [String]) {
        self.yaml = yaml
        self.disabled = disabled
    }
}

/// What a worker tells its supervisor.
public enum WorkerReport: Codable, Sendable, Equatable {
    /// The socket that comes with it listens for `service`, just bound: the supervisor keeps a
    /// copy for the next worker.
    case listener(service: String)
    /// Every service started: the supervisor now counts a crash as a crash, not a failed start.
    case ready
    /// The services listening now; the supervisor closes the sockets of any other (a service
    /// removed, suspended or held back), so its clients are refused as without `--isolate`.
    case listening([String])
    /// The services wanted now, after a change: the next worker starts from them.
    case services(WantedServices)
}
