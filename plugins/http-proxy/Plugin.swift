// http-proxy — an HTTP/1.x proxy in front of a real server that fails the requests you choose and
// passes the rest untouched.
//
// Tests a client's retries against the real thing: "the first 2 requests get a 503, then the real
// answer" (`fail=first:2`), "every 10th request is reset" (`fail=every:10 with=reset`), "10% of
// POSTs are slow" is two services away. The host parses each request as for any HTTP behaviour;
// a request that passes is written again to the upstream (method, target, version, headers,
// body) and the upstream's response is relayed byte for byte, framed by `HTTPResponseFraming` to
// know where it ends.
//
// A worked example of a non-trivial Swift plugin: an upstream connection per client connection
// through the kit's `Connection.openUpstream` (capability cynic.connect/1), a queue of its own to
// keep a keep-alive connection's requests in order, and an instance shared by every connection's
// thread (the request counter, behind a lock).
import CynicPluginKit

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Which requests fail: the `fail` parameter. Requests are numbered from 1 in the order they
/// reach the service, over all its connections.
enum RequestSelector: Equatable {
    case none
    case first(UInt64)
    case nth(UInt64)
    case every(UInt64)
    case method(String)
    case pathPrefix(String)
    /// Each request fails with this probability, drawn from the seed and its number alone, so a
    /// seed fails the same request numbers in every run.
    case probability(Double)

    init(parameter text: String) throws {
        let (kind, value) = splitParameter(text)
        func count() throws -> UInt64 {
            guard let value, let count = UInt64(value), count > 0 else {
                throw ConfigurationError("fail=\(text): \(kind) takes a count of at least 1, e.g. \(kind):3")
            }
            return count
        }
        switch kind {
        case "none" where value == nil: self = .none
        case "first": self = .first(try count())
        case "nth": self = .nth(try count())
        case "every": self = .every(try count())
        case "method":
            guard let value, !value.isEmpty else { throw ConfigurationError("fail=\(text): name the method, e.g. method:POST") }
            self = .method(value.uppercased()) // methods are upper case; a user may not type them so
        case "path":
            guard let value, value.hasPrefix("/") else { throw ConfigurationError("fail=\(text): give a path prefix, e.g. path:/api/") }
            self = .pathPrefix(value)
        case "probability":
            guard let value, let probability = Double(value), (0...1).contains(probability) else {
                throw ConfigurationError("fail=\(text): probability takes a number from 0 to 1, e.g. probability:0.1")
            }
            self = .probability(probability)
        default:
            throw ConfigurationError("fail=\(text): expected none, first:N, nth:N, every:N, method:NAME, "
                                     + "path:/prefix or probability:P")
        }
    }

    func selects(number: UInt64, _ request: HTTPRequest, seed: UInt64) -> Bool {
        switch self {
        case .none: false
        case .first(let count): number <= count
        case .nth(let n): number == n
        case .every(let n): number % n == 0
        case .method(let method): request.method == method
        case .pathPrefix(let prefix): request.target.hasPrefix(prefix)
        case .probability(let p): unitInterval(seed: seed, number: number) < p
        }
    }
}

/// What a failing request gets: the `with` parameter.
enum FailureMode: Equatable {
    case status(Int)
    case reset
    case close
    /// Forwarded after this many milliseconds; the response is the upstream's.
    case delay(milliseconds: UInt64)

    init(parameter text: String) throws {
        let (kind, value) = splitParameter(text)
        switch (kind, value) {
        case ("status", nil): self = .status(503)
        case ("status", let value?):
            guard let code = Int(value), (200...599).contains(code) else {
                throw ConfigurationError("with=\(text): a status from 200 to 599, e.g. status:503")
            }
            self = .status(code)
        case ("reset", nil): self = .reset
        case ("close", nil): self = .close
        case ("delay", let value?):
            guard let milliseconds = UInt64(value) else {
                throw ConfigurationError("with=\(text): delay takes milliseconds, e.g. delay:500")
            }
            self = .delay(milliseconds: milliseconds)
        default:
            throw ConfigurationError("with=\(text): expected status:CODE, reset, close or delay:MS")
        }
    }
}

/// "first:2" → ("first", "2"); "reset" → ("reset", nil).
private func splitParameter(_ text: String) -> (kind: String, value: String?) {
    guard let colon = text.firstIndex(of: ":") else { return (text, nil) }
    return (String(text[..<colon]), String(text[text.index(after: colon)...]))
}

/// A number in [0, 1) that depends only on `seed` and `number`: the SplitMix64 finaliser of the
/// number's step in a stream that starts at the mixed seed, so neighbouring seeds give unrelated
/// sets of requests.
func unitInterval(seed: UInt64, number: UInt64) -> Double {
    func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    return Double(mix(mix(seed) &+ number &* 0x9E37_79B9_7F4A_7C15) >> 11) / Double(1 << 53)
}

/// Numbers requests across every connection of a service, which run on several threads.
final class RequestCounter: @unchecked Sendable { // @unchecked: `count` is guarded by `lock`
    /// Allocated: a mutex must not move, and a stored property's address is not stable.
    private let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private var count: UInt64 = 0

    init() { pthread_mutex_init(lock, nil) }

    deinit {
        pthread_mutex_destroy(lock)
        lock.deallocate()
    }

    func next() -> UInt64 {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        count += 1
        return count
    }
}

/// The service: its parameters, read-only once configured, and the shared request counter.
final class HTTPProxy: Behaviour {
    var upstream = ""
    var selector = RequestSelector.none
    var failure = FailureMode.status(503)
    var retryAfter: String?
    var seed: UInt64 = 0
    let counter = RequestCounter()

    /// A client pipelining further ahead than this is reset: the requests wait here, bodies
    /// and all, while the one before is answered. The host pipelines 16 ahead itself.
    static let waitingLimit = 16

    func open(_ conn: Connection) -> any ConnectionHandler {
        ProxiedConnection(service: self, client: conn)
    }

    /// What becomes of request number `number`: nil, it passes.
    func fate(of request: HTTPRequest, number: UInt64) -> FailureMode? {
        selector.selects(number: number, request, seed: seed) ? failure : nil
    }

    /// The answer to a request that fails with `status` (or to one the upstream could not answer,
    /// with 502), in the client's keep-alive terms.
    func statusResponse(_ status: Int, to request: HTTPRequest, retryAfter: String?) -> [UInt8] {
        let reason = HTTPResponse.reason(for: status) ?? "Unknown"
        // RFC 9110: a 204 or 304 has no body, and a HEAD's response does not send it.
        let body = status == 204 || status == 304 ? [] : Array("\(status) \(reason)\n".utf8)
        var headers: [(name: String, value: String)] = [("Content-Type", "text/plain; charset=utf-8"),
                                                        ("Content-Length", String(body.count))]
        if let retryAfter { headers.append(("Retry-After", retryAfter)) }
        headers.append(("Connection", request.keepAlive ? "keep-alive" : "close"))
        return HTTPResponse.head(status: status, reason: reason, headers: headers) + (request.method == "HEAD" ? [] : body)
    }
}

/// One client connection, and the upstream connection its requests go to. The upstream's events
/// come on the client's thread and never overlap the client's calls: one object handles both.
final class ProxiedConnection: ConnectionHandler, UpstreamHandler {
    private struct Waiting {
        var request: HTTPRequest
        var number: UInt64
        var fate: FailureMode?
    }

    /// The request forwarded and not yet answered in full.
    private struct InFlight {
        var request: HTTPRequest
        var framing: HTTPResponseFraming
        /// Bytes of the response relayed to the client so far: with none, a failure can still be
        /// answered with a 502.
        var relayed = 0
    }

    private let service: HTTPProxy
    /// Used from the upstream's events too, which the host allows: they run inside the client's.
    private let client: Connection
    private var waiting: [Waiting] = []
    private var inFlight: InFlight?
    /// The open upstream connection, reused while its responses keep it alive.
    private var upstream: Upstream?
    /// The client shut down its sending side: close once what it asked for is answered.
    private var clientDone = false

    init(service: HTTPProxy, client: Connection) {
        self.service = service
        self.client = client
    }

    // MARK: The client

    func request(_ request: HTTPRequest, on conn: Connection) {
        // Numbered now, in the order requests reach the service, so `first:2` means the first two
        // whatever the connection.
        let number = service.counter.next()
        guard waiting.count < HTTPProxy.waitingLimit else {
            conn.log(.warning, "more than \(HTTPProxy.waitingLimit) requests pipelined ahead: reset")
            return resetClient()
        }
        waiting.append(Waiting(request: request, number: number, fate: service.fate(of: request, number: number)))
        forwardNext()
    }

    func peerClosed(on conn: Connection) {
        clientDone = true
        if inFlight == nil, waiting.isEmpty { conn.close() }
    }

    /// Answers waiting requests in order until one is forwarded and in flight, or none is left.
    /// The host hands a request over as soon as the client's queue is idle, so requests wait
    /// here while a response is relayed.
    private func forwardNext() {
        while inFlight == nil, !waiting.isEmpty {
            let next = waiting.removeFirst()
            switch next.fate {
            case nil:
                forward(next.request, after: 0)
            case .delay(let milliseconds)?:
                client.log(.debug, "request \(next.number) (\(next.request.method) \(next.request.target)): delayed \(milliseconds) ms")
                forward(next.request, after: milliseconds)
            case .status(let status)?:
                client.log(.debug, "request \(next.number) (\(next.request.method) \(next.request.target)): failed with \(status)")
                client.send(service.statusResponse(status, to: next.request, retryAfter: service.retryAfter))
                if !next.request.keepAlive { return closeClient() }
            case .reset?:
                client.log(.debug, "request \(next.number) (\(next.request.method) \(next.request.target)): reset")
                return resetClient()
            case .close?:
                client.log(.debug, "request \(next.number) (\(next.request.method) \(next.request.target)): closed")
                return closeClient()
            }
        }
        if inFlight == nil, clientDone { client.close() }
    }

    /// Closes the client once what is queued for it is sent; nothing waiting will be answered.
    private func closeClient() {
        client.close()
        waiting.removeAll()
    }

    /// Resets the client after what is queued for it; nothing waiting will be answered.
    private func resetClient() {
        client.reset()
        waiting.removeAll()
    }

    private func forward(_ request: HTTPRequest, after milliseconds: UInt64) {
        if upstream == nil {
            do {
                upstream = try client.openUpstream(service.upstream, handler: self)
            } catch {
                client.log(.warning, "upstream \(service.upstream): \(error)")
                return answerBadGateway(request)
            }
        }
        guard let upstream else { return }
        if milliseconds > 0 { upstream.wait(milliseconds: milliseconds) }
        upstream.send(Self.serialise(request))
        inFlight = InFlight(request: request, framing: HTTPResponseFraming(requestMethod: request.method))
    }

    /// The request as the upstream gets it: as the client sent it, but with the body the host
    /// read in full, so framed by a Content-Length of its own (a chunked body arrives whole), and
    /// without Expect (the body is here: nobody waits for a 100 Continue).
    static func serialise(_ request: HTTPRequest) -> [UInt8] {
        var text = "\(request.method) \(request.target) HTTP/\(request.version.major).\(request.version.minor)\r\n"
        var framed = !request.body.isEmpty
        for (name, value) in request.headers {
            switch name.lowercased() {
            case "content-length", "transfer-encoding": framed = true
            case "expect": break
            default: text += "\(name): \(value)\r\n"
            }
        }
        if framed { text += "Content-Length: \(request.body.count)\r\n" }
        text += "\r\n"
        return Array(text.utf8) + request.body
    }

    /// 502 to a request the upstream did not answer at all; the client may go on.
    private func answerBadGateway(_ request: HTTPRequest) {
        client.send(service.statusResponse(502, to: request, retryAfter: nil))
        if !request.keepAlive { closeClient() }
    }

    // MARK: The upstream

    /// Events of an upstream let go of earlier (closed after a response, or broken) are ignored.
    private func isCurrent(_ other: Upstream) -> Bool { upstream?.pointer == other.pointer }

    func connectFailed(errno: Int32, on upstream: Upstream) {
        client.log(.debug, "upstream \(service.upstream) unreachable: \(String(cString: strerror(errno)))")
    }

    func data(_ bytes: UnsafeRawBufferPointer, from upstream: Upstream) {
        guard isCurrent(upstream) else { return }
        guard var exchange = inFlight else {
            upstream.log(.debug, "\(bytes.count) bytes from the upstream when no request was waiting: closed")
            return dropUpstream()
        }
        let used: Int
        do {
            used = try exchange.framing.consume(bytes)
        } catch {
            return responseBroken(exchange, reason: "\(error)", reset: false)
        }
        if used > 0 { client.send(UnsafeRawBufferPointer(rebasing: bytes[..<used])) }
        exchange.relayed += used
        inFlight = exchange
        guard exchange.framing.isComplete else { return }
        if used < bytes.count {
            upstream.log(.debug, "\(bytes.count - used) bytes past the end of the response: closed")
            dropUpstream()
        }
        responseComplete(exchange)
    }

    func peerClosed(_ upstream: Upstream) {
        guard isCurrent(upstream) else {
            upstream.close()
            return
        }
        dropUpstream()
        guard var exchange = inFlight else { return } // closed while idle: the next request opens another
        do {
            try exchange.framing.endOfInput()
            responseComplete(exchange) // a body that ends at close: the client learns it from ours
        } catch {
            responseBroken(exchange, reason: "\(error)", reset: false)
        }
    }

    func ended(_ how: UpstreamEnd, on upstream: Upstream) {
        guard isCurrent(upstream), how != .clientEnded else { return }
        self.upstream = nil
        guard let exchange = inFlight else { return }
        let reason = how == .connectFailed ? "unreachable" : "ended (\(how)) before the response did"
        responseBroken(exchange, reason: reason, reset: how == .resetByPeer)
    }

    /// The response is out in full: go on with the next request, or close as it said.
    private func responseComplete(_ exchange: InFlight) {
        inFlight = nil
        if !exchange.framing.keepAlive { dropUpstream() }
        // A response that closes (or ends at close) closes the client too, as it was promised.
        guard exchange.framing.keepAlive, exchange.request.keepAlive else { return closeClient() }
        forwardNext()
    }

    /// The upstream failed the exchange: a 502 when nothing was relayed yet; otherwise the client
    /// has part of a response, and only the end of its connection can tell it — a reset for a
    /// reset.
    private func responseBroken(_ exchange: InFlight, reason: String, reset: Bool) {
        client.log(.debug, "upstream \(service.upstream): \(reason)")
        inFlight = nil
        dropUpstream()
        if exchange.relayed == 0 {
            answerBadGateway(exchange.request)
            forwardNext()
        } else {
            reset ? resetClient() : closeClient()
        }
    }

    /// Closes the current upstream, if any; the next request opens a new one.
    private func dropUpstream() {
        upstream?.close()
        upstream = nil
    }
}

private let configure: @convention(c) (UnsafeMutableRawPointer?, UnsafePointer<CChar>?, UnsafePointer<CChar>?,
                                       UnsafePointer<CChar>?, UnsafePointer<CChar>?, UInt64) -> UnsafePointer<CChar>? = {
    instance, upstream, fail, with, retryAfter, seed in
    HTTPProxy.configure(instance) {
        guard let upstream else {
            throw ConfigurationError("upstream: required, the HTTP server to proxy to ('host:port' or 'unix:/path')")
        }
        $0.upstream = String(cString: upstream)
        $0.selector = try RequestSelector(parameter: String(cString: fail!))
        $0.failure = try FailureMode(parameter: String(cString: with!))
        $0.retryAfter = retryAfter.map { String(cString: $0) }
        $0.seed = seed
        // Last, so a mistake in the parameters is told first, on any host.
        guard ConnectCapability.available(for: instance) else {
            throw ConfigurationError("this cynic cannot open upstream connections (no cynic.connect/1): upgrade it")
        }
    }
}

private let plugin = PluginDescriptor(
    name: "http-proxy",
    description: "Proxies HTTP/1.x to a real server; fails the requests chosen (a status, a reset, a delay), passes the rest.",
    http: true,
    params: [Parameter("upstream", .string,
                       doc: "Required: the HTTP server to proxy to, 'host:port' ('[::1]:8080' for IPv6) or 'unix:/path'."),
             Parameter("fail", .string, default: "none",
                       doc: "Which requests fail, numbered from 1 over all connections: none, first:N, nth:N, "
                           + "every:N, method:NAME, path:/prefix, or probability:P (0 to 1, drawn from seed)."),
             Parameter("with", .string, default: "status:503",
                       doc: "What a failing request gets: status:CODE (200-599, answered by the proxy), reset "
                           + "(a TCP RST), close (a FIN, no answer), or delay:MS (then passed through)."),
             Parameter("retry_after", .string,
                       doc: "With status:CODE, a Retry-After header with this value (seconds or an HTTP date)."),
             Parameter("seed", .uint64, default: "0",
                       doc: "With probability:P: the same seed fails the same request numbers in every run.")],
    configure: unsafeBitCast(configure, to: cynic_any_fn.self), behaviour: HTTPProxy.self)

@_cdecl("cynic_plugin_entry")
public func cynicPluginEntry() -> UnsafePointer<cynic_plugin> { plugin.pointer }
