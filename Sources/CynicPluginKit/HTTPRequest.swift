import CCynicPlugin

/// A Swift copy of the host's `cynic_http_request`, so it may be kept after the callback.
public struct HTTPRequest: Sendable {
    public var method: String
    /// "/path?query", as sent.
    public var target: String
    public var version: (major: UInt16, minor: UInt16)
    /// In the order sent, names as the client wrote them.
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]
    /// What the client asked for (its version and `Connection` header).
    public var keepAlive: Bool

    init(_ request: cynic_http_request) {
        method = String(cString: request.method)
        target = String(cString: request.target)
        version = (request.version_major, request.version_minor)
        headers = UnsafeBufferPointer(start: request.headers, count: Int(request.header_count)).map {
            (String(cString: $0.name), String(cString: $0.value))
        }
        body = Array(UnsafeBufferPointer(start: request.body, count: request.body_length))
        keepAlive = request.keep_alive
    }

    /// The first value of header `name` (case-insensitive), or nil.
    public func header(_ name: String) -> String? {
        let name = name.lowercased()
        return headers.first { $0.name.lowercased() == name }?.value
    }
}
