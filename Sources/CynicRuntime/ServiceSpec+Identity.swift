import CynicConfig

extension ServiceSpec {
    /// The same service, wherever in the file it is written: a reload leaves such a service alone.
    func sameService(as other: ServiceSpec) -> Bool {
        name == other.name && behaviour == other.behaviour && address == other.address && seed == other.seed && tls == other.tls
            && maxConnections == other.maxConnections
            && parameters.mapValues(\.text) == other.parameters.mapValues(\.text)
            && shapers.map(\.shaper) == other.shapers.map(\.shaper)
            && shapers.map(\.name) == other.shapers.map(\.name)
            && shapers.map(\.probability) == other.shapers.map(\.probability)
            && shapers.map(\.direction) == other.shapers.map(\.direction)
            && shapers.map { $0.parameters.mapValues(\.text) } == other.shapers.map { $0.parameters.mapValues(\.text) }
    }

    /// Whether the service runs code of the plugin `name`, as its behaviour or a shaper: a new
    /// generation of it must suit the service, and its removal stops the service accepting.
    func uses(_ name: String) -> Bool {
        behaviour == name || shapers.contains { $0.shaper == name }
    }
}
