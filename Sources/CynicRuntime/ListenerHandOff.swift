import CynicConfig
import NIOCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Under `--isolate`, the listening sockets a worker serves on outlive it: each one the worker
/// binds is handed to the supervisor as soon as it is bound, and a worker started after a crash
/// gets them back and serves on them, so connections that arrive meanwhile wait in the kernel's
/// backlog and the address never goes away.
///
/// Inactive (the process-wide one, unless a worker activates it) it answers nil and services
/// bind through NIO as they always have.
public final class ListenerHandOff: Sendable {
    public static let shared = ListenerHandOff()

    /// A listening socket of a service, as the supervisor holds it.
    public struct Listener: Sendable {
        public let service: String
        public let descriptor: Int32
        public init(service: String, descriptor: Int32) {
            self.service = service
            self.descriptor = descriptor
        }
    }

    private struct State {
        var active = false
        /// From the supervisor, by service: each is taken by the first bind of its service that
        /// wants its address.
        var inherited: [String: Int32] = [:]
        /// Tells the supervisor of a socket just bound, before the worker serves on it.
        var announce: (@Sendable (Listener) -> Void)?
    }

    private let state = Mutex(State())

    public init() {}

    /// From now on services get their sockets here: `inherited` first, else a new one, which
    /// `announce` hands on.
    public func activate(inherited: [Listener], announce: @escaping @Sendable (Listener) -> Void) {
        state.withLock { state in
            state.active = true
            for listener in inherited {
                if let older = state.inherited.updateValue(listener.descriptor, forKey: listener.service) { close(older) }
            }
            state.announce = announce
        }
    }

    /// Sockets inherited and not taken: services that no longer listen. Closed, and forgotten.
    public func closeUnclaimed() {
        let left = state.withLock { state in
            defer { state.inherited = [:] }
            return Array(state.inherited.values)
        }
        left.forEach { close($0) }
    }

    /// A listening socket for `service` at `address`, with `listen`'s backlog and receive buffer;
    /// nil when inactive. The caller hands it to NIO (`withBoundSocket`), which owns it from then
    /// on, then calls `settle` (NIO listens again with its own backlog).
    func socket(service: String, address: ServiceAddress, listen: ListenSettings) throws -> Int32? {
        let (active, inherited, announce) = state.withLock { state -> (Bool, Int32?, (@Sendable (Listener) -> Void)?) in
            guard state.active else { return (false, nil, nil) }
            guard let candidate = state.inherited[service], Self.socket(candidate, isAt: address) else {
                return (true, nil, state.announce)
            }
            state.inherited[service] = nil
            return (true, candidate, state.announce)
        }
        guard active else { return nil }
        if let inherited {
            // The supervisor holds its own copy: the socket is the same one, already listening.
            if listen.receiveBuffer > 0 { try Self.set(inherited, SO_RCVBUF, Int32(clamping: listen.receiveBuffer)) }
            return inherited
        }
        let descriptor = try Self.bind(address, listen: listen)
        announce?(Listener(service: service, descriptor: descriptor))
        return descriptor
    }

    /// NIO's `withBoundSocket` listens with its default backlog: the one the service wants is
    /// set again (listen on a listening socket changes its backlog).
    func settle(_ descriptor: Int32, listen: ListenSettings) {
        _ = Glibc.listen(descriptor, listen.backlog)
    }

    /// Whether `descriptor` is bound where `address` asks: the same path, or the same IP and
    /// port (any port, for port 0).
    private static func socket(_ descriptor: Int32, isAt address: ServiceAddress) -> Bool {
        guard let bound = try? localAddress(of: descriptor) else { return false }
        switch address {
        case .unix(let path):
            return bound.pathname == path
        case .tcp(let host, let port):
            guard let wanted = try? SocketAddress.makeAddressResolvingHost(host, port: port) else { return false }
            return bound.protocol == wanted.protocol && bound.ipAddress == wanted.ipAddress && (port == 0 || bound.port == port)
        }
    }

    private static func localAddress(of descriptor: Int32) throws -> SocketAddress {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let status = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        guard status == 0 else { throw IOError(errnoCode: errno, reason: "getsockname") }
        let family = Int32(storage.ss_family)
        return try withUnsafePointer(to: &storage) { pointer in
            switch family {
            case AF_INET: return SocketAddress(pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee })
            case AF_INET6: return SocketAddress(pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee })
            case AF_UNIX: return SocketAddress(pointer.withMemoryRebound(to: sockaddr_un.self, capacity: 1) { $0.pointee })
            default: throw IOError(errnoCode: EAFNOSUPPORT, reason: "getsockname")
            }
        }
    }

    /// A new socket bound to `address` and listening, as NIO's bootstrap would make it.
    private static func bind(_ address: ServiceAddress, listen: ListenSettings) throws -> Int32 {
        let target: SocketAddress
        switch address {
        case .tcp(let host, let port): target = try SocketAddress.makeAddressResolvingHost(host, port: port)
        case .unix(let path):
            target = try SocketAddress(unixDomainSocketPath: path)
            // As NIO's cleanupExistingSocketFile: a socket file left behind is replaced, nothing else.
            var status = stat()
            if lstat(path, &status) == 0, status.st_mode & S_IFMT == S_IFSOCK { unlink(path) }
        }
        let descriptor = Glibc.socket(Int32(target.protocol.rawValue), Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw IOError(errnoCode: errno, reason: "socket") }
        do {
            if case .tcp = address { try set(descriptor, SO_REUSEADDR, 1) }
            if listen.receiveBuffer > 0 { try set(descriptor, SO_RCVBUF, Int32(clamping: listen.receiveBuffer)) }
            let bound = target.withSockAddr { Glibc.bind(descriptor, $0, socklen_t($1)) }
            guard bound == 0 else { throw IOError(errnoCode: errno, reason: "bind") }
            guard Glibc.listen(descriptor, listen.backlog) == 0 else { throw IOError(errnoCode: errno, reason: "listen") }
        } catch {
            close(descriptor)
            throw error
        }
        return descriptor
    }

    private static func set(_ descriptor: Int32, _ option: Int32, _ value: Int32) throws {
        var value = value
        guard setsockopt(descriptor, SOL_SOCKET, option, &value, socklen_t(MemoryLayout<Int32>.size)) == 0 else {
            throw IOError(errnoCode: errno, reason: "setsockopt")
        }
    }
}
