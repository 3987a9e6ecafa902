import CCynicPlugin
import CynicConfig

/// How a listener is made, as a plugin asks (see `cynic_listen`): what cannot change on a socket
/// that is already listening.
public struct ListenSettings: Sendable, Equatable {
    public static let defaultBacklog: Int32 = 1024

    public var backlog: Int32
    /// SO_RCVBUF for accepted connections; 0 for the kernel's default.
    public var receiveBuffer: UInt32
    public var neverAccept: Bool

    public init(backlog: Int32 = ListenSettings.defaultBacklog, receiveBuffer: UInt32 = 0, neverAccept: Bool = false) {
        self.backlog = backlog
        self.receiveBuffer = receiveBuffer
        self.neverAccept = neverAccept
    }

    /// A plugin's answer, its zeros read as the host's defaults; none at all is all defaults.
    public init(_ listen: cynic_listen?) {
        self.init(backlog: listen.map { $0.backlog > 0 ? $0.backlog : Self.defaultBacklog } ?? Self.defaultBacklog,
                  receiveBuffer: listen?.receive_buffer ?? 0, neverAccept: listen?.never_accept ?? false)
    }
}

/// What a configuration reload does to each service, decided from the running services and the
/// file's alone: no socket is touched here, so every rule is tested without one. The server binds
/// what `listen` asks for, and commits only when every bind succeeded.
///
/// A listener is reused whenever its address is wanted again, so a change never needs a second
/// socket on an address that is already taken: the same service changed, or another name (a
/// rename) at the same fixed address, takes it over. Port 0 ("any port") is the same address only
/// for the same service: another service asking for any port gets a port of its own.
public struct ReloadPlan: Sendable, Equatable {
    /// A running service as the plan sees it.
    public struct Running: Sendable, Equatable {
        public var spec: ServiceSpec
        /// How its listener was made; nil while it is not listening (its behaviour is gone).
        public var listen: ListenSettings?

        public init(spec: ServiceSpec, listen: ListenSettings?) {
            self.spec = spec
            self.listen = listen
        }
    }

    /// A service of the new file, with how its new setup wants to listen.
    public struct Wanted: Sendable, Equatable {
        public var spec: ServiceSpec
        public var listen: ListenSettings

        public init(spec: ServiceSpec, listen: ListenSettings) {
            self.spec = spec
            self.listen = listen
        }
    }

    public enum Step: Sendable, Equatable {
        /// The same service: its listener, setup and connections are left alone.
        case keep(String)
        /// The running service `from` keeps its listener and takes this spec and a new setup:
        /// new connections get the new setup, open ones finish on the old.
        case handOver(from: String, to: ServiceSpec)
        /// As `handOver`, but the listener must be made anew (its listen settings change), which
        /// cannot happen before the old one closes: done last, at commit.
        case rebind(from: String, to: ServiceSpec)
        /// A new address: a new listener, bound while the old ones still serve.
        case listen(ServiceSpec)
    }

    /// One step per service of the file, in file order.
    public let steps: [Step]
    /// The running services nothing keeps or takes over, in their order: stopped at commit.
    public let removed: [String]

    public init(running: [Running], wanted: [Wanted]) {
        var free = running
        func take(_ index: Int) -> Running { free.remove(at: index) }
        // Unchanged services first, so their listeners are never offered to another.
        var kept: Set<String> = []
        for service in wanted {
            if let index = free.firstIndex(where: { $0.spec.sameService(as: service.spec) }) {
                kept.insert(take(index).spec.name)
            }
        }
        var steps: [Step] = []
        for service in wanted {
            if kept.contains(service.spec.name) {
                steps.append(.keep(service.spec.name))
                continue
            }
            let sameName = free.firstIndex { $0.listen != nil && $0.spec.name == service.spec.name && $0.spec.address == service.spec.address }
            let sameFixedAddress = free.firstIndex { $0.listen != nil && $0.spec.address == service.spec.address && !$0.spec.address.isAnyPort }
            guard let index = sameName ?? sameFixedAddress else {
                steps.append(.listen(service.spec))
                continue
            }
            let owner = take(index)
            steps.append(owner.listen == service.listen ? .handOver(from: owner.spec.name, to: service.spec)
                                                        : .rebind(from: owner.spec.name, to: service.spec))
        }
        self.steps = steps
        removed = free.map(\.spec.name)
    }
}

extension ServiceAddress {
    /// TCP port 0: the kernel picks a port when the listener binds.
    var isAnyPort: Bool {
        if case .tcp(_, 0) = self { return true }
        return false
    }
}
