import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A plain blocking TCP or Unix client, as a test's client program would use: every call says
/// what the kernel said, errno included.
public final class SocketClient: @unchecked Sendable {
    // @unchecked: `fd` is immutable; a test uses one client from one thread at a time.
    public let fd: Int32

    public enum Received: Equatable, Sendable, CustomStringConvertible {
        case bytes([UInt8])
        case endOfFile
        case failed(errno: Int32)
        case timedOut

        public var description: String {
            switch self {
            case .bytes(let bytes): "\(bytes.count) bytes"
            case .endOfFile: "EOF"
            case .failed(let code): "error \(code) (\(String(cString: strerror(code))))"
            case .timedOut: "timed out"
            }
        }
    }

    public struct ConnectFailed: Error, CustomStringConvertible {
        public let errno: Int32
        public var description: String { "connect failed: \(String(cString: strerror(errno)))" }
    }

    /// Connects to 127.0.0.1:`port`.
    public convenience init(port: Int, host: String = "127.0.0.1") throws {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, host, &address.sin_addr)
        try self.init(family: AF_INET, address: address)
    }

    /// Connects to a Unix socket.
    public convenience init(unixPath: String) throws {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            let bytes = Array(unixPath.utf8.prefix(raw.count - 1))
            raw.copyBytes(from: bytes + [0])
        }
        try self.init(family: AF_UNIX, address: address)
    }

    private init<Address>(family: Int32, address: Address) throws {
        fd = socket(family, Int32(SOCK_STREAM.rawValue), 0)
        var address = address
        let status = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<Address>.size)) }
        }
        guard status == 0 else {
            // No close here: every property is set, so the throw runs deinit, which closes it.
            // Closing twice would close whatever took the number in between: another test's
            // listener, under NIO's feet (accept4 then fails with EBADF and NIO traps).
            throw ConnectFailed(errno: errno)
        }
    }

    deinit { Glibc.close(fd) }

    /// Sends without SIGPIPE; returns 0 or the errno (EPIPE, ECONNRESET...).
    @discardableResult
    public func send(_ bytes: [UInt8]) -> Int32 {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL)) }
            if sent < 0 { return errno }
            offset += sent
        }
        return 0
    }

    @discardableResult
    public func send(_ text: String) -> Int32 { send(Array(text.utf8)) }

    /// One receive, waiting at most `timeout` seconds.
    public func receive(max: Int = 65536, timeout: Double = 10) -> Received {
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let ready = poll(&poller, 1, Int32(timeout * 1000))
        if ready == 0 { return .timedOut }
        var buffer = [UInt8](repeating: 0, count: max)
        let count = recv(fd, &buffer, max, 0)
        if count < 0 { return .failed(errno: errno) }
        if count == 0 { return .endOfFile }
        return .bytes(Array(buffer[..<count]))
    }

    /// Everything until EOF (or an error, or `timeout` seconds in all).
    public func receiveAll(timeout: Double = 10) -> (bytes: [UInt8], end: Received) {
        var bytes: [UInt8] = []
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let left = deadline.timeIntervalSinceNow
            guard left > 0 else { return (bytes, .timedOut) }
            switch receive(timeout: left) {
            case .bytes(let chunk): bytes += chunk
            case let end: return (bytes, end)
            }
        }
    }

    /// Half-closes our sending side.
    public func shutdownWrite() { shutdown(fd, Int32(SHUT_WR)) }

    /// The connection's TCP state from the kernel (TCP_ESTABLISHED is 1).
    public var tcpState: UInt8 {
        var info = tcp_info()
        var length = socklen_t(MemoryLayout<tcp_info>.size)
        getsockopt(fd, Int32(IPPROTO_TCP), TCP_INFO, &info, &length)
        return info.tcpi_state
    }
}
