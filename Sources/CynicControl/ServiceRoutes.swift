import CynicConfig
import CynicPlugins
import CynicRuntime
import Hummingbird

/// cynic's own resources: services, their shapers, and the reset to the configuration.
struct ServiceRoutes: Sendable {
    let server: Server

    func register(in routes: inout RouteTable) {
        routes.add(.get, "/services") { _ in
            JSONResponse.make(await server.serviceStatuses().map(ServiceJSON.init))
        }
        routes.add(.post, "/services") { request in
            let (spec, enabled) = try ServiceInput.service(try request.json())
            return JSONResponse.make(ServiceJSON(try await create(spec, enabled: enabled)), status: .created)
        }
        routes.add(.get, "/services/:name") { request in
            JSONResponse.make(ServiceJSON(try await status(request.parameter("name"))))
        }
        routes.add(.patch, "/services/:name") { request in
            JSONResponse.make(ServiceJSON(try await change(request.parameter("name"), try request.json())))
        }
        routes.add(.delete, "/services/:name") { request in
            try await callServer { () throws(ControlError) in try await server.deleteService(request.parameter("name")) }
            return JSONResponse.noContent()
        }
        routes.add(.get, "/services/:name/shapers") { request in
            JSONResponse.make(try await status(request.parameter("name")).spec.shapers.map(ShaperJSON.init))
        }
        routes.add(.post, "/services/:name/shapers") { request in
            let (shaper, named) = try Self.newShaper(try request.json())
            let service = request.parameter("name")
            let index = try await status(service).spec.shapers.count
            let changed = try await callServer(asField: "shapers[\(index)].") { () throws(ControlError) in
                try await server.changeService(service) { spec throws(ControlError) in
                    var added = shaper
                    if named {
                        guard !spec.shapers.contains(where: { $0.name == shaper.name }) else {
                            throw ControlError(.conflict, "service '\(service)' has a shaper named '\(shaper.name)' already", field: "name")
                        }
                    } else {
                        added.name = ServiceSpec.namedUniquely(spec.shapers + [shaper]).last!.name
                    }
                    spec.shapers.append(added)
                }
            }
            return JSONResponse.make(ShaperJSON(changed.spec.shapers.last!), status: .created)
        }
        routes.add(.get, "/services/:name/shapers/:shaper") { request in
            let spec = try await status(request.parameter("name")).spec
            return JSONResponse.make(ShaperJSON(try Self.shaper(request.parameter("shaper"), of: spec)))
        }
        routes.add(.patch, "/services/:name/shapers/:shaper") { request in
            let fields = try JSONFields(try request.json())
            try fields.allowOnly(ServiceInput.shaperChangeFields)
            let direction = try ServiceInput.direction(fields, "direction")
            let probability = try fields.probability("probability")
            let parameters = try Self.parameterChanges(fields.object("parameters"))
            let (service, name) = (request.parameter("name"), request.parameter("shaper"))
            let index = try await status(service).spec.shapers.firstIndex { $0.name == name } ?? 0
            let changed = try await callServer(asField: "shapers[\(index)].") { () throws(ControlError) in
                try await server.changeService(service) { spec throws(ControlError) in
                    guard let index = spec.shapers.firstIndex(where: { $0.name == name }) else {
                        throw Self.shaperNotFound(name, in: service)
                    }
                    if let direction { spec.shapers[index].direction = direction }
                    if let probability { spec.shapers[index].probability = probability }
                    for (key, value) in parameters { spec.shapers[index].parameters[key] = value }
                }
            }
            return JSONResponse.make(ShaperJSON(try Self.shaper(name, of: changed.spec)))
        }
        routes.add(.delete, "/services/:name/shapers/:shaper") { request in
            let (service, name) = (request.parameter("name"), request.parameter("shaper"))
            _ = try await callServer { () throws(ControlError) in
                try await server.changeService(service) { spec throws(ControlError) in
                    guard spec.shapers.contains(where: { $0.name == name }) else { throw Self.shaperNotFound(name, in: service) }
                    spec.shapers.removeAll { $0.name == name }
                }
            }
            return JSONResponse.noContent()
        }
        routes.add(.post, "/configuration/reset") { _ in
            JSONResponse.make(try await callServer { () throws(ControlError) in try await server.resetToConfiguration() }.map(ServiceJSON.init))
        }
    }

    // MARK: Steps

    private func status(_ name: String) async throws(APIError) -> ServiceStatus {
        guard let status = await server.serviceStatus(name) else { throw APIError(ControlError(.notFound, "service '\(name)' not found")) }
        return status
    }

    private func create(_ spec: ServiceSpec, enabled: Bool) async throws(APIError) -> ServiceStatus {
        try await callServer { () throws(ControlError) in try await server.createService(spec, enabled: enabled) }
    }

    /// PATCH /services/NAME: the fields given replace the service's; a new behaviour without
    /// `parameters` starts from its own defaults (the old behaviour's parameters mean nothing to it).
    private func change(_ name: String, _ body: JSONValue) async throws(APIError) -> ServiceStatus {
        let fields = try JSONFields(body)
        try fields.allowOnly(ServiceInput.changeFields)
        let behaviour = try fields.string("behaviour")
        let address = try ServiceInput.address(fields, "listen")
        let parameters = fields.has("parameters") ? try ServiceInput.parameters(fields.object("parameters")) : nil
        let shapers = fields.has("shapers") ? try ServiceInput.shapers(fields) : nil
        let seed = try fields.unsigned("seed", nullable: true)
        let tls = try ServiceInput.tls(fields)
        let maxConnections = try ServiceInput.maxConnections(fields)
        let enabled = try fields.bool("enabled")
        return try await callServer { () throws(ControlError) in
            try await server.changeService(name, enabled: enabled) { spec in
                if let behaviour, behaviour != spec.behaviour {
                    spec.behaviour = behaviour
                    spec.parameters = [:]
                }
                if let address { spec.address = address }
                if let parameters { spec.parameters = parameters }
                if let shapers { spec.shapers = shapers }
                if let seed { spec.seed = seed }
                if let tls { spec.tls = tls }
                if let maxConnections { spec.maxConnections = maxConnections }
            }
        }
    }

    // MARK: Shapers

    /// A shaper from POST .../shapers, and whether the request named it.
    static func newShaper(_ body: JSONValue) throws(APIError) -> (ShaperSpec, named: Bool) {
        let shaper = try ServiceInput.shaper(body)
        let named = (try? JSONFields(body).name("name")) != nil
        return (shaper, named)
    }

    static func shaper(_ name: String, of spec: ServiceSpec) throws(APIError) -> ShaperSpec {
        guard let shaper = spec.shapers.first(where: { $0.name == name }) else {
            throw APIError(shaperNotFound(name, in: spec.name))
        }
        return shaper
    }

    static func shaperNotFound(_ name: String, in service: String) -> ControlError {
        ControlError(.notFound, "service '\(service)' has no shaper named '\(name)'")
    }

    /// PATCH's parameters, merged into the shaper's: a value sets one, null removes it (back to
    /// the shaper's default).
    static func parameterChanges(_ fields: JSONFields?) throws(APIError) -> [String: ParameterInput?] {
        guard let fields else { return [:] }
        var changes: [String: ParameterInput?] = [:]
        for (key, value) in fields.values {
            if value == .null {
                changes[key] = .some(nil)
                continue
            }
            guard let text = value.parameterText else {
                throw fields.invalid(key, "expected a string, number, boolean or null, got \(value.kind)")
            }
            changes[key] = ParameterInput(text, origin: fields.path + key)
        }
        return changes
    }
}
