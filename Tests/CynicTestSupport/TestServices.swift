import CynicConfig
import CynicPlugins
import CynicRuntime
import Logging
import NIOCore
import NIOPosix

/// Services started inside the test process, on ports the kernel picks, so tests run in
/// parallel without fighting over cynic's fixed ports.
public enum TestServices {
    /// Event loops shared by every in-process service of the test run.
    public static let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
    /// Event loops for the services of tests that measure time (the shapers'): nothing else runs
    /// on them, so another test's busy connections cannot delay their timers and writes.
    public static let timingGroup = MultiThreadedEventLoopGroup(numberOfThreads: 2)
    /// The control thread test servers run their own work on.
    public static let control = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    /// The shipped plugins, built beside the test executable.
    public static let shipped: PluginCatalog = {
        // A test plugin may write to a closed connection: never die of SIGPIPE.
        signal(SIGPIPE, SIG_IGN)
        return (try? PluginCatalog.load([PluginDirectory(path: Paths.buildFolder, prefix: "libcynic-plugin-")])) ?? PluginCatalog()
    }()

    public static let logger = Logger(label: "cynic.test")

    /// The local CA of the test run: made once in a temporary folder, never the user's own.
    public static let tlsFolder = TemporaryFolder("cynic-test-ca")
    public static let tls = TLSSource(caFolder: tlsFolder.path + "/ca")
    /// Its certificate, what a client trusts.
    public static var caCertificate: String {
        get throws { try tls.contexts().ca.certificatePath }
    }

    /// Starts one service of a shipped (or given) plugin on 127.0.0.1, port 0; `shapers` are
    /// written as on the command line (`latency:ms=200,probability=0.5`).
    /// `events`, when given, gets the record of each connection; `loops` run its connections.
    /// `tls`, when given, serves it over TLS from the test run's CA (`tls`).
    public static func start(_ behaviour: String, parameters: [String: String] = [:],
                             shapers: [String] = [], seed: UInt64? = nil, tls tlsSpec: TLSSpec? = nil,
                             catalog: PluginCatalog = shipped, events: ConnectionEventLog? = nil,
                             on loops: any EventLoopGroup = group) async throws -> Service {
        let inputs = parameters.mapValues { ParameterInput($0, origin: "test") }
        let spec = ServiceSpec(name: behaviour, behaviour: behaviour, address: .tcp(host: "127.0.0.1", port: 0),
                               parameters: inputs, shapers: try shapers.map { try ShaperSpec(commandLine: $0) },
                               seed: seed, tls: tlsSpec, origin: "test")
        return try await Service.start(spec, plugins: catalog, group: loops, logger: logger, events: events, tls: tls)
    }
}

extension Service {
    /// The TCP port the service listens on.
    public var port: Int {
        if case .tcp(_, let port) = boundAddress { return port }
        return 0
    }
}
