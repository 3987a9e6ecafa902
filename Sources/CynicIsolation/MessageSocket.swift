import CIsolation
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// One end of the supervisor's link with a worker: an AF_UNIX SOCK_SEQPACKET socket, so each
/// message arrives whole or not at all, with the descriptors it carries (SCM_RIGHTS). Messages
/// are JSON; sends from several threads are one at a time.
public final class MessageSocket: Sendable {
    /// The largest message: a report of every service's name fits many times over.
    public static let maximumMessageBytes = 64 << 10

    public let descriptor: Int32
    private let sending = Mutex(())

    public init(descriptor: Int32) {
        self.descriptor = descriptor
    }

    deinit {
        close(descriptor)
    }

    /// A connected pair: (ours, theirs), both close-on-exec.
    public static func pair() throws(IsolationError) -> (MessageSocket, Int32) {
        var ends: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &ends) == 0 else {
            throw IsolationError("socketpair: \(errnoText())")
        }
        return (MessageSocket(descriptor: ends[0]), ends[1])
    }

    /// Sends `message` with `descriptors` (which stay ours: the receiver gets copies).
    public func send<Message: Encodable>(_ message: Message, descriptors: [Int32] = []) throws(IsolationError) {
        let bytes: Data
        do {
            bytes = try JSONEncoder().encode(message)
        } catch {
            throw IsolationError("cannot encode \(Message.self): \(error)")
        }
        guard bytes.count <= Self.maximumMessageBytes, descriptors.count <= Int(CYNIC_MAX_PASSED_DESCRIPTORS) else {
            throw IsolationError("message too large: \(bytes.count) bytes, \(descriptors.count) descriptors")
        }
        let status = sending.withLock { _ in
            bytes.withUnsafeBytes { raw in
                cynic_send_message(descriptor, raw.baseAddress, raw.count, descriptors, Int32(descriptors.count))
            }
        }
        guard status == 0 else { throw IsolationError("cannot send to the other process: \(errnoText())", linkBroken: true) }
    }

    /// The next message and its descriptors (ours now, close-on-exec); nil at EOF: the other
    /// process is gone. Blocks.
    public func receive<Message: Decodable>(_ type: Message.Type) throws(IsolationError) -> (Message, [Int32])? {
        var bytes = [UInt8](repeating: 0, count: Self.maximumMessageBytes)
        var descriptors = [Int32](repeating: -1, count: Int(CYNIC_MAX_PASSED_DESCRIPTORS))
        var count: Int32 = 0
        let length = bytes.withUnsafeMutableBytes { raw in
            cynic_receive_message(descriptor, raw.baseAddress, raw.count, &descriptors, CYNIC_MAX_PASSED_DESCRIPTORS, &count)
        }
        guard length >= 0 else {
            throw IsolationError("cannot read from the other process: \(errnoText())", linkBroken: true)
        }
        guard length > 0 else { return nil }
        let passed = Array(descriptors[..<Int(count)])
        do {
            return (try JSONDecoder().decode(Message.self, from: Data(bytes[..<length])), passed)
        } catch {
            passed.forEach { close($0) }
            throw IsolationError("cannot decode \(Message.self): \(error)")
        }
    }
}

public struct IsolationError: Error, Sendable, CustomStringConvertible {
    public let description: String
    /// The socket failed, not one message: nothing more will come over it.
    public let linkBroken: Bool

    public init(_ description: String, linkBroken: Bool = false) {
        self.description = description
        self.linkBroken = linkBroken
    }
}

func errnoText() -> String { String(cString: strerror(errno)) }
