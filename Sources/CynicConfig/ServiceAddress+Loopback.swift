#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension ServiceAddress {
    /// Whether only this machine can connect: a Unix socket, or a TCP host in 127.0.0.0/8, `::1`
    /// (also as the IPv4-mapped `::ffff:127.x.y.z`) or `localhost`. Any other host — `0.0.0.0`,
    /// `::`, an interface's address, a name that may resolve to one — is reachable from elsewhere.
    public var isLoopback: Bool {
        switch self {
        case .unix: true
        case .tcp(let host, _): Self.isLoopback(host: host)
        }
    }

    static func isLoopback(host: String) -> Bool {
        if host.lowercased() == "localhost" { return true }
        var v4 = in_addr()
        if inet_pton(AF_INET, host, &v4) == 1 {
            return UInt32(bigEndian: v4.s_addr) >> 24 == 127
        }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, host, &v6) == 1 else { return false }
        let bytes = withUnsafeBytes(of: &v6) { Array($0) }
        let loopback = bytes[0..<15].allSatisfy { $0 == 0 } && bytes[15] == 1
        let mappedLoopback = bytes[0..<10].allSatisfy { $0 == 0 } && bytes[10] == 0xff && bytes[11] == 0xff && bytes[12] == 127
        return loopback || mappedLoopback
    }

    /// The warning for a listener beyond loopback, or nil for one only this machine can reach.
    /// `what` names the listener ("service 'api'").
    public func beyondLoopbackWarning(for what: String) -> String? {
        guard !isLoopback else { return nil }
        return "\(what) listens on \(self), beyond loopback: any host that can reach this machine can connect to it"
    }
}
