/// The services a server runs, by name, in the order they were configured: listings and the
/// status report follow the configuration, not a dictionary's order.
struct ServiceList {
    private var byName: [String: Service] = [:]
    private var order: [String] = []

    init() {}

    /// These services, in this order.
    init(_ services: [Service]) {
        for service in services { add(service) }
    }

    subscript(name: String) -> Service? { byName[name] }

    var inOrder: [Service] { order.compactMap { byName[$0] } }

    /// Adds a service under its spec's name, after the others; one already known by that name is
    /// replaced in its place.
    mutating func add(_ service: Service) {
        add(service, as: service.spec.name)
    }

    /// Adds a service under `name`: a reload lists a service it rebinds under the name of the
    /// spec it is about to take.
    mutating func add(_ service: Service, as name: String) {
        if byName.updateValue(service, forKey: name) == nil { order.append(name) }
    }
}
