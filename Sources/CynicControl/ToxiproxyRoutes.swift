import CynicConfig
import CynicPlugins
import CynicRuntime
import Hummingbird

/// toxiproxy 2.x's API, answered as toxiproxy answers it, so its clients drive cynic unchanged:
/// a proxy is a cynic service whose behaviour is `proxy`, a toxic one of its shapers
/// (`ToxicType`). Bodies are read as toxiproxy's Go server reads them: unknown fields ignored,
/// wrong types refused as "bad request body".
struct ToxiproxyRoutes: Sendable {
    let server: Server

    static let behaviour = "proxy"

    func register(in routes: inout RouteTable) {
        routes.add(.get, "/proxies") { _ in
            var proxies: [String: ProxyJSON] = [:]
            for status in await server.serviceStatuses() where status.spec.behaviour == Self.behaviour {
                proxies[status.spec.name] = ProxyJSON(status)
            }
            return JSONResponse.make(proxies)
        }
        routes.add(.post, "/proxies") { request in
            let input = try ProxyInput(try request.json(), position: nil)
            return JSONResponse.make(ProxyJSON(try await create(input)), status: .created)
        }
        routes.add(.post, "/populate") { request in try await populate(request) }
        routes.add(.get, "/proxies/:proxy") { request in
            JSONResponse.make(ProxyJSON(try await proxy(request.parameter("proxy"))))
        }
        for method in [HTTPRequest.Method.post, .patch] {
            routes.add(method, "/proxies/:proxy") { request in
                JSONResponse.make(ProxyJSON(try await update(request.parameter("proxy"), try request.json())))
            }
            routes.add(method, "/proxies/:proxy/toxics/:toxic") { request in
                JSONResponse.make(try await updateToxic(request.parameter("proxy"), request.parameter("toxic"), try request.json()))
            }
        }
        routes.add(.delete, "/proxies/:proxy") { request in
            let name = try await proxy(request.parameter("proxy")).spec.name
            try await callServer { () throws(ControlError) in try await server.deleteService(name, dropConnections: true) }
            return JSONResponse.noContent()
        }
        routes.add(.get, "/proxies/:proxy/toxics") { request in
            JSONResponse.make(try await proxy(request.parameter("proxy")).spec.shapers.map(ToxicJSON.init))
        }
        routes.add(.post, "/proxies/:proxy/toxics") { request in
            JSONResponse.make(try await addToxic(request.parameter("proxy"), try request.json()))
        }
        routes.add(.get, "/proxies/:proxy/toxics/:toxic") { request in
            let spec = try await proxy(request.parameter("proxy")).spec
            return JSONResponse.make(ToxicJSON(try Self.toxic(request.parameter("toxic"), of: spec)))
        }
        routes.add(.delete, "/proxies/:proxy/toxics/:toxic") { request in
            let (name, toxic) = (try await proxy(request.parameter("proxy")).spec.name, request.parameter("toxic"))
            _ = try await callServer { () throws(ControlError) in
                try await server.changeService(name, reshapeOpenConnections: true) { spec throws(ControlError) in
                    guard spec.shapers.contains(where: { $0.name == toxic }) else { throw Self.toxicNotFound }
                    spec.shapers.removeAll { $0.name == toxic }
                }
            }
            return JSONResponse.noContent()
        }
        routes.add(.post, "/reset") { _ in
            try await callServer { () throws(ControlError) in
                try await server.removeShapersAndEnable { $0.behaviour == Self.behaviour }
            }
            return JSONResponse.noContent()
        }
        routes.add(.get, "/version") { _ in
            JSONResponse.make(["version": "cynic \(CynicVersion.current)"])
        }
    }

    // MARK: Proxies

    private func proxy(_ name: String) async throws(APIError) -> ServiceStatus {
        guard let status = await server.serviceStatus(name), status.spec.behaviour == Self.behaviour else {
            throw APIError.notFound("proxy not found")
        }
        return status
    }

    private func create(_ input: ProxyInput) async throws(APIError) -> ServiceStatus {
        if let existing = await server.serviceStatus(input.name) {
            throw APIError(.conflict, existing.spec.behaviour == Self.behaviour
                ? "proxy already exists"
                : "proxy already exists: cynic runs a service of that name (behaviour \(existing.spec.behaviour))", field: "name")
        }
        let spec = ServiceSpec(name: input.name, behaviour: Self.behaviour, address: input.listen ?? ServiceInput.defaultAddress,
                               parameters: ["upstream": ParameterInput(input.upstream, origin: "upstream")], origin: "toxiproxy API")
        return try await callServer { () throws(ControlError) in try await server.createService(spec, enabled: input.enabled ?? true) }
    }

    /// POST/PATCH /proxies/NAME: `listen`, `upstream` and `enabled` as given, the rest as they
    /// were. Disabled, a proxy also closes its connections, as toxiproxy's does.
    private func update(_ name: String, _ body: JSONValue) async throws(APIError) -> ServiceStatus {
        _ = try await proxy(name)
        let fields = try ProxyInput.fields(body)
        let listen = try ProxyInput.listen(fields)
        let upstream = try ProxyInput.string(fields, "upstream")
        let enabled = try ProxyInput.bool(fields, "enabled")
        return try await callServer { () throws(ControlError) in
            try await server.changeService(name, enabled: enabled, dropConnections: true) { spec in
                if let listen { spec.address = listen }
                if let upstream, !upstream.isEmpty { spec.parameters["upstream"] = ParameterInput(upstream, origin: "upstream") }
            }
        }
    }

    /// POST /populate: every proxy of the list created, or replaced when its address or upstream
    /// differ; one refused stops the list there and the answer says which were made.
    private func populate(_ request: APIRequest) async throws -> Response {
        let body = try request.json()
        guard case .array(let items) = body else {
            throw APIError.badRequest("bad request body: expected a list of proxies, got \(body.kind)")
        }
        var inputs: [ProxyInput] = []
        for (index, item) in items.enumerated() { inputs.append(try ProxyInput(item, position: index + 1)) }
        var done: [ProxyJSON] = []
        for input in inputs {
            do throws(APIError) {
                if let existing = await server.serviceStatus(input.name), existing.spec.behaviour == Self.behaviour {
                    let sameListen = input.listen.map { $0 == existing.spec.address } ?? true
                    if sameListen, existing.spec.parameters["upstream"]?.text == input.upstream {
                        done.append(ProxyJSON(existing))
                        continue
                    }
                    let name = existing.spec.name
                    try await callServer { () throws(ControlError) in try await server.deleteService(name, dropConnections: true) }
                }
                done.append(ProxyJSON(try await create(input)))
            } catch {
                return JSONResponse.make(PopulateFailure(error: error.message, status: Int(error.status.code), proxies: done),
                                         status: error.status)
            }
        }
        return JSONResponse.make(["proxies": done], status: .created)
    }

    // MARK: Toxics

    private func addToxic(_ proxyName: String, _ body: JSONValue) async throws(APIError) -> ToxicJSON {
        let name = try await proxy(proxyName).spec.name
        let toxic = try ToxicInput(new: body)
        let shaper = try toxic.shaper(existing: nil, shaperNames: await shaperNames(for: toxic))
        let changed = try await callServer { () throws(ControlError) in
            try await server.changeService(name, reshapeOpenConnections: true) { spec throws(ControlError) in
                guard !spec.shapers.contains(where: { $0.name == toxic.name }) else {
                    throw ControlError(.conflict, "toxic already exists", field: "name")
                }
                spec.shapers.append(shaper)
            }
        }
        return ToxicJSON(try Self.toxic(toxic.name, of: changed.spec))
    }

    /// POST/PATCH a toxic: the attributes given replace those values, the others stay; so does
    /// the toxicity unless given. Its name, type and stream do not change.
    private func updateToxic(_ proxyName: String, _ toxicName: String, _ body: JSONValue) async throws(APIError) -> ToxicJSON {
        let spec = try await proxy(proxyName).spec
        let current = try Self.toxic(toxicName, of: spec)
        let toxic = try ToxicInput(update: body, of: current)
        let shaper = try toxic.shaper(existing: current, shaperNames: await shaperNames(for: toxic))
        let changed = try await callServer { () throws(ControlError) in
            try await server.changeService(spec.name, reshapeOpenConnections: true) { spec throws(ControlError) in
                guard let index = spec.shapers.firstIndex(where: { $0.name == toxicName }) else { throw Self.toxicNotFound }
                spec.shapers[index] = shaper
            }
        }
        return ToxicJSON(try Self.toxic(toxicName, of: changed.spec))
    }

    /// The shapers loaded, when the toxic names one of cynic's (`cynic.NAME`) rather than a type
    /// of toxiproxy's.
    private func shaperNames(for toxic: ToxicInput) async -> [String] {
        guard toxic.needsShaperNames else { return [] }
        return await server.pluginListing().plugins.filter { $0.plugin.isShaper }.map(\.plugin.name)
    }

    static func toxic(_ name: String, of spec: ServiceSpec) throws(APIError) -> ShaperSpec {
        guard let shaper = spec.shapers.first(where: { $0.name == name }) else { throw APIError(toxicNotFound) }
        return shaper
    }

    static let toxicNotFound = ControlError(.notFound, "toxic not found")
}

/// A proxy as toxiproxy answers it.
struct ProxyJSON: Encodable {
    let name: String
    let listen: String
    let upstream: String
    let enabled: Bool
    let toxics: [ToxicJSON]

    init(_ status: ServiceStatus) {
        name = status.spec.name
        listen = status.boundAddress.description
        upstream = status.spec.parameters["upstream"]?.text ?? ""
        enabled = status.enabled
        toxics = status.spec.shapers.map(ToxicJSON.init)
    }
}

private struct PopulateFailure: Encodable {
    let error: String
    let status: Int
    let proxies: [ProxyJSON]
}

/// A proxy in a request, as toxiproxy reads it: `name` and `upstream` required, `listen` and
/// `enabled` optional, other fields ignored.
struct ProxyInput {
    let name: String
    let upstream: String
    let listen: ServiceAddress?
    let enabled: Bool?

    /// `position`: its place in a /populate list, named in errors as toxiproxy does.
    init(_ body: JSONValue, position: Int?) throws(APIError) {
        let fields = try Self.fields(body)
        let at = position.map { " at proxy \($0)" } ?? ""
        guard let name = try Self.string(fields, "name"), !name.isEmpty else {
            throw APIError.badRequest("missing required field: name\(at)", field: "name")
        }
        if let problem = JSONFields.problem(withName: name) { throw APIError.badRequest("name\(at): \(problem)", field: "name") }
        guard let upstream = try Self.string(fields, "upstream"), !upstream.isEmpty else {
            throw APIError.badRequest("missing required field: upstream\(at)", field: "upstream")
        }
        self.name = name
        self.upstream = upstream
        listen = try Self.listen(fields)
        enabled = try Self.bool(fields, "enabled")
    }

    static func fields(_ body: JSONValue) throws(APIError) -> JSONFields {
        guard case .object = body else { throw APIError.badRequest("bad request body: expected an object, got \(body.kind)") }
        return try JSONFields(body)
    }

    /// A field of a type toxiproxy's Go structs would refuse: "bad request body".
    static func string(_ fields: JSONFields, _ key: String) throws(APIError) -> String? {
        do {
            return try fields.values[key] == .null ? nil : fields.string(key)
        } catch {
            throw APIError.badRequest("bad request body: \(error.message)", field: key)
        }
    }

    static func bool(_ fields: JSONFields, _ key: String) throws(APIError) -> Bool? {
        do {
            return try fields.values[key] == .null ? nil : fields.bool(key)
        } catch {
            throw APIError.badRequest("bad request body: \(error.message)", field: key)
        }
    }

    /// `listen`: "" or absent is any port on loopback.
    static func listen(_ fields: JSONFields) throws(APIError) -> ServiceAddress? {
        guard let text = try string(fields, "listen") else { return nil }
        if text.isEmpty { return ServiceInput.defaultAddress }
        switch ServiceAddress.parse(text) {
        case .success(let address): return address
        case .failure(let error): throw APIError.badRequest("listen: \(error.description)", field: "listen")
        }
    }
}
