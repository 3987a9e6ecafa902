/// Where the control API answers: `http://HOST:PORT`, with an optional path prefix (an API
/// behind a reverse proxy). `HOST:PORT` alone, the form `cynic serve --api` takes, means http.
public struct ControlEndpoint: Sendable, Equatable, CustomStringConvertible {
    /// The API of a cynic started with no `--api`.
    public static let standard = ControlEndpoint(host: "127.0.0.1", port: 8474)

    /// A name or an address; an IPv6 address without its brackets.
    public let host: String
    public let port: Int
    /// Put before every request's path: "" or "/prefix", never ending in "/".
    public let basePath: String

    public init(host: String, port: Int, basePath: String = "") {
        self.host = host
        self.port = port
        self.basePath = basePath
    }

    /// Reads `http://HOST[:PORT][/PATH]`, `http://[IPv6]:PORT` or `HOST:PORT`; nil for anything
    /// else (https included: the API speaks plain HTTP).
    public init?(parsing text: String) {
        var rest = Substring(text)
        if let scheme = rest.range(of: "://") {
            guard rest[..<scheme.lowerBound].lowercased() == "http" else { return nil }
            rest = rest[scheme.upperBound...]
        } else if !rest.contains(":") {
            return nil  // a bare name is more likely a mistake than port 80
        }
        let authority = rest.prefix { $0 != "/" }
        let path = rest[authority.endIndex...]
        var host: Substring
        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { return nil }
                portText = after.dropFirst()
            }
        } else {
            let parts = authority.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count <= 2 else { return nil }
            host = parts[0]
            portText = parts.count == 2 ? parts[1] : nil
        }
        var port = 80
        if let portText {
            guard let number = Int(portText), (1...65535).contains(number) else { return nil }
            port = number
        }
        guard !host.isEmpty, !host.contains("@") else { return nil }
        var basePath = String(path)
        while basePath.hasSuffix("/") { basePath.removeLast() }
        self.init(host: String(host), port: port, basePath: basePath)
    }

    /// As a user writes it: `http://127.0.0.1:8474`.
    public var description: String {
        let shownHost = host.contains(":") ? "[\(host)]" : host
        return "http://\(shownHost):\(port)\(basePath)"
    }

    /// The `Host` header's value.
    var hostHeader: String {
        let shownHost = host.contains(":") ? "[\(host)]" : host
        return port == 80 ? shownHost : "\(shownHost):\(port)"
    }
}
