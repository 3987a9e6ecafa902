// status — a response with the status code, reason phrase, Retry-After and body you choose.
//
// Tests how a client handles the codes it rarely meets: a 503 or 429 with a Retry-After it should
// honour, a code it has no name for (599, 999), a reason phrase that says something else.
import CynicPluginKit

final class Status: Behaviour, ConnectionHandler {
    private var code = 503
    private var reason = "Service Unavailable"
    private var retryAfter: String?
    /// nil: none, not even a Content-Length, as RFC 9110 wants for 1xx, 204 and 304.
    private var body: [UInt8]? = Array("503 Service Unavailable\n".utf8)

    func configure(code: UInt32, reason: String?, retryAfter: String?, body: String?) throws {
        guard (100...999).contains(code) else {
            throw ConfigurationError("code \(code) is not an HTTP status code: use 100...999")
        }
        self.code = Int(code)
        self.reason = reason ?? HTTPResponse.reason(for: self.code) ?? "Unknown"
        self.retryAfter = retryAfter
        // A body given is sent whatever the code: breaking the rule may be the point.
        let bodiless = code < 200 || code == 204 || code == 304
        self.body = body.map { Array($0.utf8) } ?? (bodiless ? nil : Array("\(code) \(self.reason)\n".utf8))
    }

    func request(_ request: HTTPRequest, on conn: Connection) {
        var headers: [(name: String, value: String)] = []
        if let body {
            headers += [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", String(body.count))]
        }
        if let retryAfter { headers.append(("Retry-After", retryAfter)) }
        headers.append(("Connection", request.keepAlive ? "keep-alive" : "close"))
        conn.send(HTTPResponse.head(status: code, reason: reason, headers: headers) + (body ?? []))
        // Left open, the connection gets the client's next request once this response is out.
        if !request.keepAlive { conn.close() }
    }
}

private let configure: @convention(c) (UnsafeMutableRawPointer?, UInt32, UnsafePointer<CChar>?,
                                       UnsafePointer<CChar>?, UnsafePointer<CChar>?) -> UnsafePointer<CChar>? = {
    instance, code, reason, retryAfter, body in
    Status.configure(instance) {
        try $0.configure(code: code, reason: reason.map { String(cString: $0) },
                         retryAfter: retryAfter.map { String(cString: $0) },
                         body: body.map { String(cString: $0) })
    }
}

private let plugin = PluginDescriptor(
    name: "status", description: "Answers with any status code (503 by default), reason, Retry-After and body.",
    defaultPort: 2009, http: true,
    params: [Parameter("code", .uint32, default: "503", doc: "The status code, 100...999."),
             Parameter("reason", .string,
                       doc: "The reason phrase; by default the code's registered one, or \"Unknown\"."),
             Parameter("retry_after", .string,
                       doc: "When set, a Retry-After header with this value (seconds or an HTTP date)."),
             Parameter("body", .string,
                       doc: "The body, as text/plain; by default a line naming the status (none for 1xx, 204, 304).")],
    configure: unsafeBitCast(configure, to: cynic_any_fn.self), behaviour: Status.self)

@_cdecl("cynic_plugin_entry")
public func cynicPluginEntry() -> UnsafePointer<cynic_plugin> { plugin.pointer }
