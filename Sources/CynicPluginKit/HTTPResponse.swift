#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Raw HTTP/1.1 response bytes. Nothing is checked or added: a behaviour may lie on purpose.
public enum HTTPResponse {
    /// The status line and `headers`, in order, then the blank line.
    ///
    ///     HTTPResponse.head(headers: ["Content-Type": "text/plain", "Content-Length": "5"])
    public static func head(status: Int = 200, reason: String = "OK",
                            headers: KeyValuePairs<String, String>) -> [UInt8] {
        var text = "HTTP/1.1 \(status) \(reason)\r\n"
        for (name, value) in headers {
            text += "\(name): \(value)\r\n"
        }
        text += "\r\n"
        return Array(text.utf8)
    }

    /// The same, for headers chosen at run time (one sent only when a parameter is set).
    public static func head(status: Int = 200, reason: String = "OK",
                            headers: [(name: String, value: String)]) -> [UInt8] {
        var text = "HTTP/1.1 \(status) \(reason)\r\n"
        for (name, value) in headers {
            text += "\(name): \(value)\r\n"
        }
        text += "\r\n"
        return Array(text.utf8)
    }
}

/// A response body and its content type: a built-in one, or what the `body_file` and
/// `content_type` parameters name.
public struct StaticBody: Sendable {
    public var bytes: [UInt8] { didSet { render() } }
    public var contentType: String { didSet { render() } }
    /// The whole responses, kept alive and closing, made when the body or its type change: a
    /// behaviour answering thousands of requests a second sends them as they are.
    private var rendered: (keepAlive: [UInt8], close: [UInt8]) = ([], [])

    public init(_ text: String, contentType: String) {
        self.init(bytes: Array(text.utf8), contentType: contentType)
    }

    public init(bytes: [UInt8], contentType: String) {
        self.bytes = bytes
        self.contentType = contentType
        render()
    }

    private mutating func render() {
        rendered = (head(keepAlive: true) + bytes, head(keepAlive: false) + bytes)
    }

    /// The two string parameters `body_file` and `content_type`, defaulting to this body, for a
    /// configure closure that passes their values to `configured(file:contentType:)`.
    public var parameters: [Parameter] {
        [Parameter("body_file", .string,
                   doc: "Serve this file's bytes instead of the built-in body (read at start)."),
         Parameter("content_type", .string, default: contentType,
                   doc: "The Content-Type header sent with the body.")]
    }

    /// This body, with the bytes of `file` (read now) when it is not NULL, and `contentType` when
    /// it is not NULL. Throws a `ConfigurationError` naming the file when it cannot be read.
    public func configured(file: UnsafePointer<CChar>?,
                           contentType: UnsafePointer<CChar>?) throws -> StaticBody {
        var body = self
        if let file { body.bytes = try Self.contents(of: String(cString: file)) }
        if let contentType { body.contentType = String(cString: contentType) }
        return body
    }

    /// `200 OK` with Content-Type, Content-Length and a `Connection` header saying whether the
    /// connection stays open.
    public func head(keepAlive: Bool = false) -> [UInt8] {
        HTTPResponse.head(headers: ["Content-Type": contentType,
                                    "Content-Length": String(bytes.count),
                                    "Connection": keepAlive ? "keep-alive" : "close"])
    }

    /// `head(keepAlive:)` followed by the bytes, made once.
    public func response(keepAlive: Bool = false) -> [UInt8] {
        keepAlive ? rendered.keepAlive : rendered.close
    }

    /// The bytes of the file at `path`, read now. Throws a `ConfigurationError` naming the file
    /// when it cannot be read.
    public static func contents(of path: String) throws -> [UInt8] {
        func failure() -> ConfigurationError {
            ConfigurationError("body_file \"\(path)\": \(String(cString: strerror(errno)))")
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw failure() }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count == 0 { return bytes }
            if count < 0 {
                if errno == EINTR { continue }
                throw failure()
            }
            bytes += chunk[..<count]
        }
    }
}

extension StaticBody {
    /// A small "Hello, World!" HTML page, the body of the well-behaved HTML behaviours.
    public static let helloPage = StaticBody("""
        <!DOCTYPE html>
        <html>
        <head><meta charset="utf-8"><title>Hello</title></head>
        <body><h1>Hello, World!</h1></body>
        </html>

        """, contentType: "text/html; charset=utf-8")

    /// A small JSON document, the body of the well-behaved JSON behaviours.
    public static let helloDocument = StaticBody(#"{"message": "Hello, World!"}"#,
                                                 contentType: "application/json")
}
