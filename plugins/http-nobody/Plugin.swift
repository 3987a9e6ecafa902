// http-nobody — headers that announce a body, then close without sending it.
//
// Tests how a client reports a response cut short: it must not accept the empty body as complete.
import CynicPluginKit

final class MissingBody: Behaviour, ConnectionHandler {
    func request(_ request: HTTPRequest, on conn: Connection) {
        conn.send(HTTPResponse.head(headers: ["Content-Type": "text/html",
                                              "Content-Length": "13",
                                              "Connection": "close"]))
        conn.close()
    }
}

private let plugin = PluginDescriptor(
    name: "http-nobody", description: "Announces a 13-byte body, sends none, closes.",
    defaultPort: 2002, http: true, behaviour: MissingBody.self)

@_cdecl("cynic_plugin_entry")
public func cynicPluginEntry() -> UnsafePointer<cynic_plugin> { plugin.pointer }
