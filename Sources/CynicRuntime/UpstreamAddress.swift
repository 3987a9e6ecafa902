import NIOCore

/// Where a plugin asks cynic.connect/1 to connect: "host:port" (a name, an IPv4 address, or an
/// IPv6 one in brackets) or "unix:/path". Read once, when `open` is called, so a mistake is
/// CYNIC_ERR_INVALID there and never a failed connect later.
enum UpstreamAddress: Equatable, CustomStringConvertible {
    /// A numeric address or a Unix socket: no name to resolve.
    case socket(SocketAddress)
    /// A name, resolved when connecting.
    case named(host: String, port: Int)

    /// The longest address text read: a host name is at most 253 bytes, a Unix path 107.
    static let maximumLength = 512

    init?(_ text: String) {
        guard !text.isEmpty, text.utf8.count <= Self.maximumLength else { return nil }
        if text.hasPrefix("unix:") {
            let path = String(text.dropFirst(5))
            guard path.hasPrefix("/"), let address = try? SocketAddress(unixDomainSocketPath: path) else { return nil }
            self = .socket(address)
            return
        }
        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            // "[::1]:5432": the brackets keep the IPv6 address's colons apart from the port's.
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            portText = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":"), !text[..<colon].contains(":") else { return nil }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        }
        guard !host.isEmpty, let port = Int(portText), (1...65535).contains(port),
              host.unicodeScalars.allSatisfy({ $0.isASCII && $0.value > 0x20 && $0 != "/" }) else { return nil }
        if let numeric = try? SocketAddress(ipAddress: String(host), port: port) {
            self = .socket(numeric)
        } else if text.hasPrefix("[") {
            return nil  // brackets hold an IPv6 address, not a name
        } else {
            self = .named(host: String(host), port: port)
        }
    }

    var description: String {
        switch self {
        case .socket(let address):
            switch address {
            case .unixDomainSocket: "unix:\(address.pathname ?? "?")"
            case .v6: "[\(address.ipAddress ?? "?")]:\(address.port ?? 0)"
            case .v4: "\(address.ipAddress ?? "?"):\(address.port ?? 0)"
            }
        case .named(let host, let port): "\(host):\(port)"
        }
    }
}
