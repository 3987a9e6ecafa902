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

/// Which of a connection's streams a shaper shapes, in toxiproxy's words.
public enum ShaperDirection: String, Sendable, Equatable, CaseIterable {
    /// What the service sends to its client: the only stream a service without upstream
    /// connections has.
    case downstream
    /// What the service sends on the upstream connections it opens (proxy mode, "cynic.connect/1").
    case upstream

    /// "downstream or upstream": what the errors of the file and the command line expect.
    static let choices = allCases.map(\.rawValue).joined(separator: " or ")
}

/// A shaper applied to a service's connections: which, how often, in which direction, with what
/// parameters.
public struct ShaperSpec: Sendable, Equatable {
    /// Names it within its service (the control API addresses it so; toxiproxy's toxic name).
    /// Unique in a service: `ServiceSpec` gives repeats a suffix ("latency-2").
    public var name: String
    public var shaper: String
    /// The chance, 0 to 1, that it applies to a given connection.
    public var probability: Double
    /// The stream it shapes; a shaper plugin never knows, it shapes what passes through it.
    public var direction: ShaperDirection
    public var parameters: [String: ParameterInput]

    public init(shaper: String, name: String? = nil, probability: Double = 1, direction: ShaperDirection = .downstream,
                parameters: [String: ParameterInput] = [:]) {
        self.name = name ?? shaper
        self.shaper = shaper
        self.probability = probability
        self.direction = direction
        self.parameters = parameters
    }

    /// Reads the command line's `NAME[:key=value,...]`; the keys `probability`, `direction` and
    /// `name` are the shaper's own, every other key one of its parameters.
    public init(commandLine text: String) throws(ShaperSpecError) {
        let parts = text.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        let name = String(parts[0])
        guard !name.isEmpty else { throw ShaperSpecError(text: text, reason: "no shaper name before ':'") }
        var probability = 1.0
        var direction = ShaperDirection.downstream
        var label: String?
        var parameters: [String: ParameterInput] = [:]
        if parts.count == 2 {
            for pair in parts[1].split(separator: ",") {
                let keyValue = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                guard keyValue.count == 2, !keyValue[0].isEmpty else {
                    throw ShaperSpecError(text: text, reason: "expected key=value, got '\(pair)'")
                }
                let (key, value) = (String(keyValue[0]), String(keyValue[1]))
                if key == "probability" {
                    guard let number = Double(value), (0...1).contains(number) else {
                        throw ShaperSpecError(text: text, reason: "probability must be a number from 0 to 1, got '\(value)'")
                    }
                    probability = number
                } else if key == "direction" {
                    guard let chosen = ShaperDirection(rawValue: value) else {
                        throw ShaperSpecError(text: text, reason: "direction: expected \(ShaperDirection.choices), got '\(value)'")
                    }
                    direction = chosen
                } else if key == "name" {
                    guard !value.isEmpty else { throw ShaperSpecError(text: text, reason: "name: expected a name, got ''") }
                    label = value
                } else {
                    parameters[key] = ParameterInput(value, origin: "--shape \(name)")
                }
            }
        }
        self.init(shaper: name, name: label, probability: probability, direction: direction, parameters: parameters)
    }
}

public struct ShaperSpecError: Error, Sendable, CustomStringConvertible {
    public let text: String
    public let reason: String
    public var description: String { "--shape \(text): \(reason)" }
}

/// One service to run: a behaviour, where it listens, its parameters as the user wrote them, and
/// the shapers its connections pass through. Values are checked against the plugins'
/// parameters when the service starts.
public struct ServiceSpec: Sendable, Equatable {
    public var name: String
    public var behaviour: String
    public var address: ServiceAddress
    public var parameters: [String: ParameterInput]
    /// In order: the behaviour's actions pass through the first, then the next.
    public var shapers: [ShaperSpec]
    /// Seeds the draws that decide which shapers apply to a connection; nil for a random seed.
    public var seed: UInt64?
    /// How it speaks TLS; nil: plain TCP.
    public var tls: TLSSpec?
    /// The most connections it holds at once (`max_connections`); nil: the process's
    /// `--max-connections`.
    public var maxConnections: Int?
    /// Where it was defined ("cynic.yaml:12", "command line"), for error messages.
    public var origin: String

    public init(name: String, behaviour: String, address: ServiceAddress,
                parameters: [String: ParameterInput] = [:], shapers: [ShaperSpec] = [], seed: UInt64? = nil,
                tls: TLSSpec? = nil, maxConnections: Int? = nil, origin: String) {
        self.name = name
        self.behaviour = behaviour
        self.address = address
        self.parameters = parameters
        self.shapers = Self.namedUniquely(shapers)
        self.seed = seed
        self.tls = tls
        self.maxConnections = maxConnections
        self.origin = origin
    }

    /// The shapers with every name unique: a repeated name gets a suffix, "latency-2", "latency-3".
    public static func namedUniquely(_ shapers: [ShaperSpec]) -> [ShaperSpec] {
        var taken = Set<String>()
        return shapers.map { shaper in
            var named = shaper
            var suffix = 2
            while taken.contains(named.name) {
                named.name = "\(shaper.name)-\(suffix)"
                suffix += 1
            }
            taken.insert(named.name)
            return named
        }
    }

    /// The host services bind to unless told otherwise: loopback, so a test harness is never
    /// reachable from the network by accident.
    public static let defaultHost = "127.0.0.1"
}
