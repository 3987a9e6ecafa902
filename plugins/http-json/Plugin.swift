// http-json — a well-behaved JSON API: one small document per request, keep-alive honoured.
import CynicPluginKit

final class JSONMessage: Behaviour, ConnectionHandler {
    static let hello = StaticBody(#"{"message": "Hello, World!"}"#, contentType: "application/json")

    var document = hello

    func request(_ request: HTTPRequest, on conn: Connection) {
        conn.send(document.response(keepAlive: request.keepAlive))
        // Left open, the connection gets the client's next request once this response is out.
        if !request.keepAlive { conn.close() }
    }
}

private let configure: @convention(c) (UnsafeMutableRawPointer?, UnsafePointer<CChar>?,
                                       UnsafePointer<CChar>?) -> UnsafePointer<CChar>? = {
    instance, bodyFile, contentType in
    JSONMessage.configure(instance) {
        $0.document = try $0.document.configured(file: bodyFile, contentType: contentType)
    }
}

private let plugin = PluginDescriptor(
    name: "http-json", description: "Answers with a small JSON document; keeps the connection alive if asked.",
    defaultPort: 2001, http: true, params: JSONMessage.hello.parameters,
    configure: unsafeBitCast(configure, to: cynic_any_fn.self), behaviour: JSONMessage.self)

@_cdecl("cynic_plugin_entry")
public func cynicPluginEntry() -> UnsafePointer<cynic_plugin> { plugin.pointer }
