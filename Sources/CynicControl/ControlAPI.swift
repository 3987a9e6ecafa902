import CynicConfig
import CynicRuntime
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The control API: cynic's own resources and toxiproxy's, over HTTP/JSON, on the server's
/// event loops (Hummingbird parses HTTP; `RouteTable` dispatches).
///
/// Each route's handler lives with its resource (`ServiceRoutes`, `ToxiproxyRoutes`,
/// `PluginRoutes`); this type binds, checks the token, reads bodies within bounds and turns
/// every refusal into a JSON error.
public final class ControlAPI: Sendable {
    /// The most bytes of a request body read unless told otherwise (`--max-api-body-bytes`); a
    /// larger one is answered 413. 1 MiB, nginx's `client_max_body_size`: a whole configuration's
    /// services, or a populate of hundreds of proxies, is a few KiB.
    public static let defaultMaxBodyBytes = 1 << 20

    /// Where it listens: "127.0.0.1:8474", the port the kernel chose for port 0.
    public let boundAddress: String
    private let serviceGroup: ServiceGroup
    private let running: Task<Void, Never>
    private let server: Server

    private init(boundAddress: String, serviceGroup: ServiceGroup, running: Task<Void, Never>, server: Server) {
        self.server = server
        self.boundAddress = boundAddress
        self.serviceGroup = serviceGroup
        self.running = running
    }

    /// Binds `address` and serves until `stop()`. `token`, when given, is required of every
    /// request as `Authorization: Bearer TOKEN`; a body over `maxBodyBytes` is answered 413.
    /// Throws `ControlAPIError` when it cannot bind.
    public static func start(server: Server, address: ServiceAddress, token: String?, group: any EventLoopGroup,
                             logger: Logger, maxBodyBytes: Int = defaultMaxBodyBytes) async throws(ControlAPIError) -> ControlAPI {
        var routes = RouteTable()
        ServiceRoutes(server: server).register(in: &routes)
        ToxiproxyRoutes(server: server).register(in: &routes)
        PluginRoutes(server: server).register(in: &routes)
        EventRoutes(server: server).register(in: &routes)
        TLSRoutes(server: server).register(in: &routes)
        routes.add(.get, "/openapi.yaml") { _ in
            Response(status: .ok, headers: [.contentType: "application/yaml"],
                     body: ResponseBody(byteBuffer: ByteBuffer(string: OpenAPIDocument.yaml)))
        }
        routes.add(.get, "/") { _ in
            JSONResponse.make(["name": "cynic", "version": CynicVersion.current, "openapi": "/openapi.yaml"])
        }
        let responder = ControlResponder(routes: routes, token: token, logger: logger, maxBodyBytes: maxBodyBytes,
                                         refusals: LogThrottle(logger: logger), loop: group.next())
        let bind: BindAddress
        switch address {
        case .tcp(let host, let port): bind = .hostname(host, port: port)
        case .unix(let path): bind = .unixDomainSocket(path: path)
        }
        let bound = BoundOnce()
        var apiLogger = logger
        apiLogger[metadataKey: "api"] = "\(address)"
        let app = Application(responder: responder,
                              configuration: ApplicationConfiguration(address: bind, serverName: "cynic"),
                              onServerRunning: { channel in bound.resolve(.success(Self.describe(channel.localAddress, or: address))) },
                              eventLoopGroupProvider: .shared(group), logger: apiLogger)
        let serviceGroup = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [], logger: apiLogger))
        let running = Task {
            do {
                try await serviceGroup.run()
            } catch {
                bound.resolve(.failure(ControlAPIError(message: "cannot listen on \(address): \(Self.describe(error))")))
            }
        }
        let boundAddress: String
        do {
            boundAddress = try await bound.value.get()
        } catch {
            running.cancel()
            throw error
        }
        return ControlAPI(boundAddress: boundAddress, serviceGroup: serviceGroup, running: running, server: server)
    }

    /// Stops listening. Requests under way get a moment to finish; a client waiting on events
    /// (a long poll, a stream) is cut then, so stopping never waits on a client.
    public func stop() async {
        // Streams of events end first, their answers finished while the event loops run.
        server.events?.endSubscriptions()
        await serviceGroup.triggerGracefulShutdown()
        let running = self.running
        let cutOff = Task {
            try? await Task.sleep(for: .seconds(1))
            running.cancel()
        }
        await running.value
        cutOff.cancel()
    }

    private static func describe(_ address: SocketAddress?, or configured: ServiceAddress) -> String {
        switch address {
        case .v4(let v4)?: return "\(address?.ipAddress ?? "\(v4)"):\(address?.port ?? 0)"
        case .v6?: return "[\(address?.ipAddress ?? "::")]:\(address?.port ?? 0)"
        default: return configured.description
        }
    }

    private static func describe(_ error: any Error) -> String {
        if let io = error as? IOError, io.errnoCode == EADDRINUSE { return "address already in use" }
        return "\(error)"
    }
}

public struct ControlAPIError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

/// The first outcome of a start — bound, or failed — handed to whoever waits for it.
private final class BoundOnce: Sendable {
    private let state = Mutex<(result: Result<String, ControlAPIError>?, waiter: CheckedContinuation<Result<String, ControlAPIError>, Never>?)>((nil, nil))

    func resolve(_ result: Result<String, ControlAPIError>) {
        let waiter = state.withLock { state -> CheckedContinuation<Result<String, ControlAPIError>, Never>? in
            guard state.result == nil else { return nil }
            state.result = result
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: result)
    }

    var value: Result<String, ControlAPIError> {
        get async {
            await withCheckedContinuation { continuation in
                let ready = state.withLock { state -> Result<String, ControlAPIError>? in
                    if state.result == nil { state.waiter = continuation }
                    return state.result
                }
                if let ready { continuation.resume(returning: ready) }
            }
        }
    }
}

/// Every request: the token, the route, the body within bounds, the handler; every error as JSON.
struct ControlResponder: HTTPResponder {
    typealias Context = BasicRequestContext

    let routes: RouteTable
    let token: String?
    let logger: Logger
    let maxBodyBytes: Int
    /// Bodies refused for their size, said once and then counted: a client in a loop is one line.
    let refusals: LogThrottle
    /// Where the count of a window is said when it ends.
    let loop: any EventLoop

    func respond(to request: Request, context: BasicRequestContext) async throws -> Response {
        do {
            return try await answer(request)
        } catch let error as APIError {
            return error.response
        } catch {
            // A bug of ours, not the client's: said in the log, answered without detail.
            logger.error("control API: \(request.method.rawValue) \(request.uri.path) failed: \(error)")
            return APIError(.internalServerError, "internal error: \(error)").response
        }
    }

    private func answer(_ request: Request) async throws -> Response {
        if let token {
            let given = request.headers[.authorization] ?? ""
            guard Self.constantTimeEqual(given, "Bearer \(token)") else {
                var error = APIError(.unauthorized, "this API needs its token: send Authorization: Bearer TOKEN (cynic's --api-token)")
                error.headers[.wwwAuthenticate] = "Bearer"
                throw error
            }
        }
        let (handler, parameters) = try routes.match(request.method, path: request.uri.path)
        var body: [UInt8] = []
        if request.method == .post || request.method == .patch || request.method == .put {
            var request = request
            do {
                var buffer = try await request.collectBody(upTo: maxBodyBytes)
                body = buffer.readBytes(length: buffer.readableBytes) ?? []
            } catch {
                let refusal = APIError(.contentTooLarge, "request body over \(maxBodyBytes) bytes (--max-api-body-bytes)")
                // The path is the client's text: not in the log.
                refusals.warning("body limit", "control API: refused a \(request.method.rawValue) whose \(refusal.message), with 413",
                                 logger: logger, flushOn: loop)
                throw refusal
            }
        }
        var query: [String: String] = [:]
        for (key, value) in request.uri.queryParameters { query[String(key)] = String(value) }
        return try await handler(APIRequest(method: request.method, parameters: parameters, query: query, body: body))
    }

    private static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let (x, y) = (Array(a.utf8), Array(b.utf8))
        guard x.count == y.count else { return false }
        return zip(x, y).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }
}
