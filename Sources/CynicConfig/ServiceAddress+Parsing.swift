extension ServiceAddress {
    /// Reads an address as the control API and `cynic ctl` write it: `HOST:PORT`,
    /// `[IPv6]:PORT`, `:PORT` (loopback), `unix:/path`. Returns the reason when it cannot.
    public static func parse(_ text: String) -> Result<ServiceAddress, AddressError> {
        if text.hasPrefix("unix:") {
            let path = String(text.dropFirst(5))
            guard path.hasPrefix("/") else { return .failure(AddressError("unix:PATH needs an absolute path, got '\(text)'")) }
            // The socket would be bound at the path cut at the NUL, not at the one asked for.
            guard !path.utf8.contains(0) else { return .failure(AddressError("unix:PATH must not contain a NUL character")) }
            return .success(.unix(path: path))
        }
        guard let colon = text.lastIndex(of: ":") else {
            return .failure(AddressError("expected HOST:PORT, [IPv6]:PORT, :PORT or unix:/path, got '\(text)'"))
        }
        var host = String(text[..<colon])
        let portText = text[text.index(after: colon)...]
        guard let port = Int(portText), (0...65535).contains(port), portText.allSatisfy(\.isNumber) else {
            return .failure(AddressError("the port must be a number from 0 to 65535, got '\(portText)' in '\(text)'"))
        }
        if host.hasPrefix("[") {
            guard host.hasSuffix("]"), host.count > 2 else {
                return .failure(AddressError("an IPv6 address goes in brackets, [::1]:PORT, got '\(text)'"))
            }
            host = String(host.dropFirst().dropLast())
        } else if host.contains(":") {
            return .failure(AddressError("an IPv6 address goes in brackets, [::1]:PORT, got '\(text)'"))
        }
        if host.isEmpty { host = ServiceSpec.defaultHost }
        guard host.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7f && $0 != "/" }) else {
            return .failure(AddressError("not a host name or address: '\(host)'"))
        }
        return .success(.tcp(host: host, port: port))
    }
}

public struct AddressError: Error, Sendable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
