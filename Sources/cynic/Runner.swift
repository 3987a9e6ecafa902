import ArgumentParser
import CynicConfig
import CynicLogSink
import CynicPlugins
import CynicRuntime
import Dispatch
import Logging
import NIOCore
import NIOPosix
#if canImport(Glibc)
import Glibc
#endif

/// Runs a set of services until SIGINT or SIGTERM, one line each on standard output, with the
/// log sink, the plugin folders watched for new versions, and SIGHUP reloading the
/// configuration file.
struct Runner {
    let directories: [PluginDirectory]
    let logger: Logger
    /// The bound on the bytes all connections queue to send (--max-queued-bytes).
    let queuedBytes: QueuedBytesBudget

    func run(_ source: Server.ServiceSource, logSink override: Configuration.LogSinkSetting?) async throws {
        let signals = Signals([(SIGINT, .stop), (SIGTERM, .stop), (SIGHUP, .reload)])
        if let raised = raiseOpenFileLimit() {
            logger.debug("open-file limit raised from \(raised.before) to \(raised.after)")
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        let control = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let copies: PluginCopies
        do {
            copies = try PluginCopies()
        } catch {
            throw failure("cannot keep private copies of plugins in \(error)")
        }
        let server = Server(directories: directories, source: source, group: group, controlLoop: control.next(),
                            logger: logger, copies: copies, queuedBytes: queuedBytes)
        var sink: LogSink?
        defer { copies.removeAll() }
        do {
            var configuration = try await server.start()
            if let override { configuration.logSink = override }
            sink = try await startLogSink(configuration.logSink, group: group)
            if configuration.services.isEmpty, case .file(let file) = source {
                throw CynicError("\(file) has no services")
            }
        } catch {
            await server.stop()
            try? await sink?.stop()
            try? await group.shutdownGracefully()
            try? await control.shutdownGracefully()
            throw failure("\(error)")
        }
        for service in await server.runningServices {
            print("service \(service.spec.name): behaviour \(service.spec.behaviour), listening on \(service.boundAddress)")
        }
        let status = await startStatusEndpoint(server: server, group: group)
        for await event in signals.events {
            if event == .reload {
                await server.reloadConfiguration()
            } else {
                break
            }
        }
        logger.info("stopping")
        await status?.stop()
        await server.stop()
        try? await sink?.stop()
        try? await group.shutdownGracefully()
        try? await control.shutdownGracefully()
    }

    /// `cynic plugins` asks a running cynic what it serves through this socket. Without it
    /// cynic still serves: one warning.
    private func startStatusEndpoint(server: Server, group: any EventLoopGroup) async -> StatusEndpoint? {
        do {
            let path = StatusEndpoint.path(in: try privateDirectory())
            return try await StatusEndpoint.start(path: path, server: server, group: group)
        } catch {
            logger.warning("no status socket for `cynic plugins`: \(error)")
            return nil
        }
    }

    private func startLogSink(_ setting: Configuration.LogSinkSetting, group: any EventLoopGroup) async throws -> LogSink? {
        let path: String
        switch setting {
        case .disabled: return nil
        case .path(let given): path = given
        case .defaultPath: path = try LogSink.defaultSocketPath()
        }
        let sink = LogSink(path: path, logger: Logger(label: "cynic.log-sink")) { record in
            print(record.consoleLine)
        }
        try await sink.start(on: group)
        print("log sink listening on unix:\(path)")
        return sink
    }
}

struct CynicError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Signals, as an awaitable stream of what they ask for.
final class Signals: @unchecked Sendable {
    // @unchecked: `sources` is immutable and only kept alive here; the stream is Sendable.
    enum Event: Sendable { case stop, reload }

    private let sources: [any DispatchSourceSignal]
    let events: AsyncStream<Event>

    init(_ handled: [(Int32, Event)]) {
        let (stream, continuation) = AsyncStream.makeStream(of: Event.self)
        events = stream
        sources = handled.map { signalNumber, event in
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber)
            source.setEventHandler { continuation.yield(event) }
            source.resume()
            return source
        }
    }
}

/// The per-user 0700 folder cynic keeps its sockets in (the log sink's default folder).
func privateDirectory() throws -> String {
    let sink = try LogSink.defaultSocketPath()
    return String(sink[..<sink.lastIndex(of: "/")!])
}
