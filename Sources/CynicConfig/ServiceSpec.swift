import CynicPlugins

/// Where a service listens.
public enum ServiceAddress: Sendable, Equatable, CustomStringConvertible {
    case tcp(host: String, port: Int)
    case unix(path: String)

    public var description: String {
        switch self {
        case .tcp(let host, let port): host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        case .unix(let path): "unix:\(path)"
        }
    }
}

/// One service to run: a behaviour, where it listens and its parameters, as the user wrote them.
/// Values are checked against the behaviour's parameters when the service starts.
public struct ServiceSpec: Sendable, Equatable {
    public var name: String
    public var behaviour: String
    public var address: ServiceAddress
    public var parameters: [String: ParameterInput]
    /// Where it was defined ("cynic.yaml:12", "command line"), for error messages.
    public var origin: String

    public init(name: String, behaviour: String, address: ServiceAddress,
                parameters: [String: ParameterInput] = [:], origin: String) {
        self.name = name
        self.behaviour = behaviour
        self.address = address
        self.parameters = parameters
        self.origin = origin
    }

    /// The host services bind to unless told otherwise: loopback, so a test harness is never
    /// reachable from the network by accident.
    public static let defaultHost = "127.0.0.1"
}
