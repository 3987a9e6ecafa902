// redirect-loop — every request is redirected to a new URL, which redirects again, for ever.
//
// Tests a client's redirect limit: curl -L gives up with "Maximum (50) redirects followed" (exit
// 47), Python requests raises TooManyRedirects, one without a limit never returns. A counter in the
// query makes each Location new, so spotting a URL seen before is not enough to stop.
import CynicPluginKit

final class RedirectLoop: Behaviour, ConnectionHandler {
    var status = 302
    var relative = true

    func request(_ request: HTTPRequest, on conn: Connection) {
        var location = Self.next(request.target)
        // Without a Host header (HTTP/1.0) there is no absolute URL to give: relative it stays.
        if !relative, let host = request.header("Host") { location = "http://\(host)\(location)" }
        let body = Array("Redirecting to \(location)\n".utf8)
        conn.send(HTTPResponse.head(status: status, reason: HTTPResponse.reason(for: status) ?? "Redirect",
                                    headers: ["Location": location,
                                              "Content-Type": "text/plain; charset=utf-8",
                                              "Content-Length": String(body.count),
                                              "Connection": request.keepAlive ? "keep-alive" : "close"]) + body)
        // Left open, the connection gets the client's next request: the redirect it follows.
        if !request.keepAlive { conn.close() }
    }

    /// `target` with its query parameter `n` one higher (or 1, appended): "/a?x=1" → "/a?x=1&n=1"
    /// → "/a?x=1&n=2".
    static func next(_ target: String) -> String {
        let parts = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        var query = parts.count > 1 ? parts[1].split(separator: "&").map(String.init) : []
        let count = query.lazy.compactMap { $0.hasPrefix("n=") ? UInt64($0.dropFirst(2)) : nil }.first ?? 0
        query.removeAll { $0.hasPrefix("n=") }
        query.append("n=\(count &+ 1)") // the client wrote it: wrapping beats crashing the host
        return "\(parts[0])?\(query.joined(separator: "&"))"
    }
}

private let configure: @convention(c) (UnsafeMutableRawPointer?, UInt32, Bool) -> UnsafePointer<CChar>? = {
    instance, status, relative in
    RedirectLoop.configure(instance) {
        guard (300...399).contains(status) else {
            throw ConfigurationError("status \(status) is not a redirect: use 300...399 (301, 302, 303, 307, 308)")
        }
        $0.status = Int(status)
        $0.relative = relative
    }
}

private let plugin = PluginDescriptor(
    name: "redirect-loop", description: "Redirects every request to itself with a new counter, for ever.",
    defaultPort: 2010, http: true,
    params: [Parameter("status", .uint32, default: "302", doc: "The redirect's status code, 300...399."),
             Parameter("relative", .bool, default: "true",
                       doc: "A relative Location (/loop?n=2); false: http://<Host header>/loop?n=2.")],
    configure: unsafeBitCast(configure, to: cynic_any_fn.self), behaviour: RedirectLoop.self)

@_cdecl("cynic_plugin_entry")
public func cynicPluginEntry() -> UnsafePointer<cynic_plugin> { plugin.pointer }
