// mislabelled — a complete, correct-length response whose body is not what its Content-Type says.
//
// Tests a client's parsing: one that trusts the label fails on the content, and should report a
// clear error rather than crash or hand garbage on as data.
import CynicPluginKit

final class Mislabelled: Behaviour, ConnectionHandler {
    /// The modes, in the order the error message lists them: a body and the label it is sent with.
    static let modes: [(name: String, body: StaticBody)] = [
        ("html-as-json", StaticBody(bytes: StaticBody.helloPage.bytes, contentType: "application/json")),
        ("json-as-html", StaticBody(bytes: StaticBody.helloDocument.bytes,
                                    contentType: "text/html; charset=utf-8")),
        ("binary-as-text", StaticBody(bytes: noise, contentType: "text/plain; charset=utf-8")),
        ("xml-as-json", StaticBody("""
            <?xml version="1.0" encoding="UTF-8"?>
            <message>Hello, World!</message>

            """, contentType: "application/json")),
    ]

    /// 1 KiB of bytes of every value in no order — NULs, control bytes, invalid UTF-8. A fixed
    /// seed makes it the same on every run, so a failure can be replayed.
    static let noise: [UInt8] = {
        var state: UInt32 = 2_463_534_242 // xorshift32
        return (0..<1024).map { _ in
            state ^= state << 13
            state ^= state >> 17
            state ^= state << 5
            return UInt8(truncatingIfNeeded: state)
        }
    }()

    var body = modes[0].body

    func request(_ request: HTTPRequest, on conn: Connection) {
        conn.send(body.response(keepAlive: request.keepAlive))
        // The lie is in the body, not the framing: keep-alive is honoured like http-json's.
        if !request.keepAlive { conn.close() }
    }
}

private let configure: @convention(c) (UnsafeMutableRawPointer?, UnsafePointer<CChar>?) -> UnsafePointer<CChar>? = {
    instance, mode in
    Mislabelled.configure(instance) {
        let name = mode.map { String(cString: $0) } ?? ""
        guard let body = Mislabelled.modes.first(where: { $0.name == name })?.body else {
            let known = Mislabelled.modes.map(\.name).joined(separator: ", ")
            throw ConfigurationError("mode \"\(name)\" is unknown; known modes: \(known)")
        }
        $0.body = body
    }
}

private let plugin = PluginDescriptor(
    name: "mislabelled", description: "Answers with a body that does not match its Content-Type.",
    defaultPort: 2008, http: true,
    params: [Parameter("mode", .string, default: "html-as-json",
                       doc: "html-as-json, json-as-html, binary-as-text (random bytes as UTF-8 text) or xml-as-json.")],
    configure: unsafeBitCast(configure, to: cynic_any_fn.self), behaviour: Mislabelled.self)

@_cdecl("cynic_plugin_entry")
public func cynicPluginEntry() -> UnsafePointer<cynic_plugin> { plugin.pointer }
