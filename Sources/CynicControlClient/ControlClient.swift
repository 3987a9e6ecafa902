import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
#if canImport(Glibc)
import Glibc
#endif

/// The methods the API answers.
public enum ControlMethod: String, Sendable {
    case get = "GET", post = "POST", patch = "PATCH", delete = "DELETE"
}

/// One answer of the API: its status and its whole body.
public struct ControlResponse: Sendable {
    public let status: Int
    public let body: [UInt8]

    public init(status: Int, body: [UInt8]) {
        self.status = status
        self.body = body
    }

    public var text: String { String(decoding: body, as: UTF8.self) }

    /// The answer itself when it is a success; the API's error, as it worded it, otherwise.
    @discardableResult
    public func requireSuccess() throws(ControlClientError) -> ControlResponse {
        guard status >= 400 else { return self }
        throw ControlAPI.Failure.decode(status: status, body: body)
    }
}

/// A client of cynic's control API: one HTTP/1.1 request per connection (NIO's codec), JSON in
/// and out. Every request runs on its own connection, so a client holds nothing between calls.
public struct ControlClient: Sendable {
    /// The largest answer read (10,000 events are a few megabytes).
    public static let bodyLimit = 64 << 20
    /// The longest line of a stream (one event record).
    public static let lineLimit = 1 << 20
    public static let connectTimeout = TimeAmount.seconds(5)

    public let endpoint: ControlEndpoint
    /// Sent as `Authorization: Bearer TOKEN`.
    public let token: String?
    private let group: any EventLoopGroup

    public init(endpoint: ControlEndpoint, token: String? = nil,
                group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.endpoint = endpoint
        self.token = token
        self.group = group
    }

    /// Sends `method path` with `json` as its body, and reads the whole answer, whatever its
    /// status; `timeout` bounds the time from connecting to the answer's end.
    public func request(_ method: ControlMethod, _ path: String, json: [UInt8]? = nil,
                        timeout: Duration = .seconds(30)) async throws(ControlClientError) -> ControlResponse {
        let (seconds, attoseconds) = timeout.components
        let limit = TimeAmount.nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
        return try await exchange(HTTPMethod(rawValue: method.rawValue), path, body: json, timeout: limit) { head, parts in
            try await collect(head, &parts)
        }
    }

    /// Sends `GET path` and calls `onLine` with each line of the answer as it comes (NDJSON:
    /// one record a line), until the API ends it. An error status is thrown as `request`'s.
    public func streamLines(_ path: String,
                            _ onLine: (ArraySlice<UInt8>) async throws -> Void) async throws(ControlClientError) {
        try await exchange(.GET, path, body: nil, timeout: nil) { head, parts in
            guard head.status.code < 300 else {
                _ = try await collect(head, &parts).requireSuccess()
                return
            }
            var pending: [UInt8] = []
            while let part = try await parts.next() {
                switch part {
                case .head:
                    throw ControlClientError.unexpected("a second answer head in one stream")
                case .body(let buffer):
                    pending.append(contentsOf: buffer.readableBytesView)
                    var start = 0
                    while let newline = pending[start...].firstIndex(of: UInt8(ascii: "\n")) {
                        if newline > start { try await onLine(pending[start..<newline]) }
                        start = newline + 1
                    }
                    pending.removeFirst(start)
                    guard pending.count <= Self.lineLimit else {
                        throw ControlClientError.unexpected("a line of the stream is longer than \(Self.lineLimit >> 20) MiB")
                    }
                case .end:
                    if !pending.isEmpty { try await onLine(pending[...]) }
                    return
                }
            }
            throw ControlClientError.incomplete(endpoint: endpoint, reason: "the connection closed mid-stream")
        }
    }

    private typealias Parts = NIOAsyncChannelInboundStream<HTTPClientResponsePart>.AsyncIterator

    /// Connects, sends the request, hands the answer's head and the rest of its parts to `read`,
    /// and closes. Errors come out as `ControlClientError`s.
    private func exchange<Result: Sendable>(
        _ method: HTTPMethod, _ path: String, body: [UInt8]?, timeout: TimeAmount?,
        read: (HTTPResponseHead, inout Parts) async throws -> Result
    ) async throws(ControlClientError) -> Result {
        let channel: NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>
        do {
            channel = try await ClientBootstrap(group: group)
                .connectTimeout(Self.connectTimeout)
                .connect(host: endpoint.host, port: endpoint.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(
                            wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            throw .unreachable(endpoint: endpoint, reason: Self.reason(connecting: error))
        }
        // A deadline closes the connection; the read then ends, and the flag says why.
        let timedOut = NIOLockedValueBox(false)
        let deadline = timeout.map { timeout in
            channel.channel.eventLoop.scheduleTask(in: timeout) { [underlying = channel.channel] in
                timedOut.withLockedValue { $0 = true }
                underlying.close(promise: nil)
            }
        }
        defer { deadline?.cancel() }
        let head = requestHead(method, path, bodyLength: body?.count)
        do {
            return try await channel.executeThenClose { inbound, outbound in
                // A server may answer (or close) before it has read the request: what it sent is
                // read all the same, and says more than the failed write.
                do {
                    try await outbound.write(.head(head))
                    if let body { try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: body)))) }
                    try await outbound.write(.end(nil))
                } catch {}
                var parts = inbound.makeAsyncIterator()
                guard case .head(let responseHead)? = try await parts.next() else {
                    throw ControlClientError.incomplete(endpoint: endpoint, reason: "the connection closed before an answer")
                }
                return try await read(responseHead, &parts)
            }
        } catch {
            if timedOut.withLockedValue({ $0 }), let timeout {
                throw .incomplete(endpoint: endpoint, reason: "no answer within \(timeout.nanoseconds / 1_000_000_000) s")
            }
            if let error = error as? ControlClientError { throw error }
            if error is HTTPParserError { throw .unexpected("\(endpoint) does not answer HTTP (\(error))") }
            if let error = error as? IOError {
                throw .incomplete(endpoint: endpoint, reason: String(cString: strerror(error.errnoCode)).lowercased())
            }
            throw .incomplete(endpoint: endpoint, reason: "\(error)")
        }
    }

    private func requestHead(_ method: HTTPMethod, _ path: String, bodyLength: Int?) -> HTTPRequestHead {
        var headers = HTTPHeaders([("Host", endpoint.hostHeader), ("User-Agent", "cynic-ctl"),
                                   ("Accept", "application/json"), ("Connection", "close")])
        if let bodyLength {
            headers.add(name: "Content-Type", value: "application/json")
            headers.add(name: "Content-Length", value: "\(bodyLength)")
        } else if method != .GET, method != .HEAD {
            // Without it NIO's encoder would frame an empty body as chunked.
            headers.add(name: "Content-Length", value: "0")
        }
        if let token { headers.add(name: "Authorization", value: "Bearer \(token)") }
        return HTTPRequestHead(version: .http1_1, method: method, uri: endpoint.basePath + path, headers: headers)
    }

    /// The rest of an answer whose head has been read, within `bodyLimit`.
    private func collect(_ head: HTTPResponseHead, _ parts: inout Parts) async throws -> ControlResponse {
        var body: [UInt8] = []
        while let part = try await parts.next() {
            switch part {
            case .head:
                throw ControlClientError.unexpected("a second answer head")
            case .body(let buffer):
                body.append(contentsOf: buffer.readableBytesView)
                guard body.count <= Self.bodyLimit else {
                    throw ControlClientError.unexpected("an answer larger than \(Self.bodyLimit >> 20) MiB")
                }
            case .end:
                return ControlResponse(status: Int(head.status.code), body: body)
            }
        }
        throw ControlClientError.incomplete(endpoint: endpoint, reason: "the connection closed before the answer ended")
    }

    /// Why a connect failed, in words, with what to do when nothing listens.
    static func reason(connecting error: any Error) -> String {
        if let error = error as? NIOConnectionError {
            if error.dnsAError != nil || error.dnsAAAAError != nil { return "cannot resolve \(error.host)" }
            if let first = error.connectionErrors.first { return reason(connecting: first.error) }
        }
        if let error = error as? IOError {
            if error.errnoCode == ECONNREFUSED {
                return "connection refused — is cynic running? start it with `cynic` or `cynic serve --api ADDR`"
            }
            return String(cString: strerror(error.errnoCode))
        }
        if case ChannelError.connectTimeout(let amount) = error {
            return "no answer to connect within \(amount.nanoseconds / 1_000_000_000) s"
        }
        return "\(error)"
    }
}
