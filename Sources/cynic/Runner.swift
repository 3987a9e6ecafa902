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

/// Runs a configuration until SIGINT or SIGTERM: the log sink, then every service, one line each
/// on standard output.
struct Runner {
    let catalog: PluginCatalog
    let logger: Logger

    func run(_ configuration: Configuration) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        let stop = StopSignal()
        var sink: LogSink?
        let services: ServiceSet
        do {
            sink = try await startLogSink(configuration.logSink, group: group)
            services = try await ServiceSet.start(configuration.services, plugins: catalog, group: group, logger: logger)
        } catch {
            try? await sink?.stop()
            try? await group.shutdownGracefully()
            throw failure("\(error)")
        }
        for service in services.services {
            print("service \(service.spec.name): behaviour \(service.spec.behaviour), listening on \(service.boundAddress)")
        }
        let received = await stop.wait()
        logger.info("\(received), stopping")
        await services.stop()
        try? await sink?.stop()
        try? await group.shutdownGracefully()
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

/// SIGINT and SIGTERM, as an awaitable event.
final class StopSignal: @unchecked Sendable {
    // @unchecked: `sources` is immutable and only kept alive here; the stream is Sendable.
    private let sources: [any DispatchSourceSignal]
    private let stream: AsyncStream<String>

    init() {
        let (stream, continuation) = AsyncStream.makeStream(of: String.self)
        self.stream = stream
        sources = [(SIGINT, "interrupted"), (SIGTERM, "terminated")].map { signalNumber, name in
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber)
            source.setEventHandler { continuation.yield(name) }
            source.resume()
            return source
        }
    }

    func wait() async -> String {
        for await name in stream { return name }
        return "stopped"
    }
}
