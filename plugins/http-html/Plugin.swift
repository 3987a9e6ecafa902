// http-html — a well-behaved HTTP server: one small HTML page, then close.
//
// The baseline the other behaviours break: a client that cannot read this has a bug of its own.
import CynicPluginKit

final class HTMLPage: Behaviour, ConnectionHandler {
    var page = StaticBody.helloPage

    func request(_ request: HTTPRequest, on conn: Connection) {
        conn.send(page.response())
        conn.close()
    }
}

private let configure: @convention(c) (UnsafeMutableRawPointer?, UnsafePointer<CChar>?,
                                       UnsafePointer<CChar>?) -> UnsafePointer<CChar>? = {
    instance, bodyFile, contentType in
    HTMLPage.configure(instance) { $0.page = try $0.page.configured(file: bodyFile, contentType: contentType) }
}

private let plugin = PluginDescriptor(
    name: "http-html", description: "Answers with an HTML \"Hello, World!\" page, then closes.",
    defaultPort: 2000, http: true, params: StaticBody.helloPage.parameters,
    configure: unsafeBitCast(configure, to: cynic_any_fn.self), behaviour: HTMLPage.self)

@_cdecl("cynic_plugin_entry")
public func cynicPluginEntry() -> UnsafePointer<cynic_plugin> { plugin.pointer }
