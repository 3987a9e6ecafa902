#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A Unix-domain-socket server that takes log records from many local processes at once.
///
/// Each connection sends records framed as a 4-byte big-endian length and that many bytes: a JSON object,
/// or a pickle as Python's `logging.handlers.SocketHandler` sends it. Each record is handed to `onRecord`;
/// a record that is too long, empty or undecodable is skipped with one warning on `logger` that names the
/// connection. A bad record or a bad client never affects other clients or the server.
///
/// ```swift
/// let sink = LogSink(path: try LogSink.defaultSocketPath(), logger: logger) { print($0.consoleLine) }
/// try await sink.start(on: MultiThreadedEventLoopGroup.singleton)
/// ...
/// try await sink.stop()
/// ```
public final class LogSink: Sendable {
    /// The default limit on one record's payload: 1 MiB.
    public static let defaultMaxRecordBytes = 1 << 20

    /// The socket's path.
    public let path: String
    /// The largest payload accepted; longer records are skipped without being buffered.
    public let maxRecordBytes: Int

    private let logger: Logger
    private let onRecord: @Sendable (LogRecord) -> Void
    private let state = NIOLockedValueBox(State())

    private struct State {
        var phase = Phase.idle
        var connections: [ObjectIdentifier: any Channel] = [:]
        var connectionsAccepted = 0
    }

    private enum Phase {
        case idle
        case starting
        case running(server: any Channel, socket: FileIdentity?)
    }

    /// - Parameters:
    ///   - path: Where to bind the socket; see `defaultSocketPath(environment:)`.
    ///   - maxRecordBytes: The largest payload accepted.
    ///   - logger: Receives the sink's own warnings (skipped records, connection errors).
    ///   - onRecord: Called for each record, on the event loop of the connection it came from: calls from
    ///     different connections may overlap; records from one connection come in order. It must not
    ///     block. `LogRecord.consoleLine` formats a record for the console.
    public init(path: String, maxRecordBytes: Int = LogSink.defaultMaxRecordBytes, logger: Logger,
                onRecord: @escaping @Sendable (LogRecord) -> Void) {
        precondition(maxRecordBytes > 0, "maxRecordBytes must be positive")
        self.path = path
        self.maxRecordBytes = maxRecordBytes
        self.logger = logger
        self.onRecord = onRecord
    }

    /// Binds the socket, mode 0600 whatever the umask, and starts accepting connections.
    ///
    /// A socket file left at `path` by a sink that is gone is removed first; anything else there (a
    /// regular file, a socket something still listens on) is refused with `LogSinkError`.
    public func start(on group: any EventLoopGroup) async throws {
        try state.withLockedValue { state in
            guard case .idle = state.phase else { throw LogSinkError.alreadyStarted(path: path) }
            state.phase = .starting
        }
        do {
            try await SocketFile.removeStale(at: path, group: group)
            let server = try await SocketFile.bindOwnerOnly(at: path) { [self] staged in
                try await ServerBootstrap(group: group)
                    .serverChannelOption(.backlog, value: 256)
                    .childChannelInitializer { [self] channel in accept(channel) }
                    .bind(unixDomainSocketPath: staged)
                    .get()
            }
            let socket = FileIdentity(path: path)
            state.withLockedValue { $0.phase = .running(server: server, socket: socket) }
            logger.debug("log sink: listening on \(path)")
        } catch {
            state.withLockedValue { $0.phase = .idle }
            throw error
        }
    }

    /// Stops accepting, closes every connection and removes the socket file. Records already read have
    /// been handed on; records still in flight are dropped. Does nothing if the sink is not running.
    public func stop() async throws {
        let stopping: (server: any Channel, socket: FileIdentity?, connections: [any Channel])? = state.withLockedValue { state in
            guard case .running(let server, let socket) = state.phase else { return nil }
            state.phase = .idle
            defer { state.connections = [:] }
            return (server, socket, Array(state.connections.values))
        }
        guard let stopping else { return }
        // Closing the server first means no connection is accepted after the list above was taken; one
        // accepted meanwhile is refused by `accept`, which sees the sink is no longer running.
        var failure: (any Error)?
        do {
            try await stopping.server.close()
        } catch ChannelError.alreadyClosed {
        } catch {
            failure = error
        }
        for connection in stopping.connections {
            try? await connection.close()
        }
        // Only our own socket: another sink may have replaced it since.
        if let socket = stopping.socket, FileIdentity(path: path) == socket {
            SocketFile.remove(at: path)
        }
        if let failure { throw failure }
    }

    /// Sets up one accepted connection; runs on its event loop.
    private func accept(_ channel: any Channel) -> EventLoopFuture<Void> {
        let number: Int? = state.withLockedValue { state in
            guard case .running = state.phase else { return nil }
            state.connectionsAccepted += 1
            state.connections[ObjectIdentifier(channel)] = channel
            return state.connectionsAccepted
        }
        guard let number else {
            return channel.close()
        }
        channel.closeFuture.whenComplete { [self] _ in
            _ = state.withLockedValue { $0.connections.removeValue(forKey: ObjectIdentifier(channel)) }
        }
        return peerProcessID(of: channel).flatMapThrowing { [self] pid in
            let name = "connection \(number)" + (pid.map { " (pid \($0))" } ?? "")
            try channel.pipeline.syncOperations.addHandlers(
                ByteToMessageHandler(RecordFrameDecoder(maxRecordBytes: maxRecordBytes)),
                RecordHandler(connection: name, peerProcessID: pid, logger: logger, onRecord: onRecord))
        }
    }
}

/// Why the sink could not start.
public enum LogSinkError: Error, CustomStringConvertible {
    /// The socket's folder cannot be made, or is not private to the current user.
    case unsafeDirectory(path: String, reason: String)
    /// Something other than a socket is at the socket's path; it was left alone.
    case notASocket(path: String)
    /// Another process is listening on the socket's path.
    case socketInUse(path: String)
    /// `start` was called on a sink that is already running.
    case alreadyStarted(path: String)
    /// A system call failed.
    case systemCall(String, path: String, errno: Int32)

    public var description: String {
        switch self {
        case .unsafeDirectory(let path, let reason):
            "cannot use \(path) for the log socket: \(reason)"
        case .notASocket(let path):
            "\(path) exists and is not a socket; remove it or choose another log socket path"
        case .socketInUse(let path):
            "another process is already listening on \(path)"
        case .alreadyStarted(let path):
            "the log sink on \(path) is already running"
        case .systemCall(let call, let path, let code):
            "\(call) \(path): \(String(cString: strerror(code)))"
        }
    }
}
