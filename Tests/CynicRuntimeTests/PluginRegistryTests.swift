import CynicConfig
import CynicPlugins
@testable import CynicRuntime
import CynicTestSupport
import Testing

/// Plugin files of a test's own: each a tiny C behaviour, loaded as the server loads them.
struct PluginFiles {
    let folder = TemporaryFolder("cynic-registry")

    /// Compiles a behaviour called `name` into `file.so` (answering `answer`, so two builds of
    /// one name differ in their bytes) and loads it.
    func load(_ name: String, file: String? = nil, answer: String = "hello", defaultPort: Int = 0) throws -> Plugin {
        let source = answeringPlugin(first: answer, second: "", name: name)
            .replacingOccurrences(of: ".create = create,", with: ".create = create, .default_port = \(defaultPort),")
        return try Plugin.load(file: compileCPlugin(source, named: file ?? name, into: folder.path))
    }
}

extension PluginRegistry {
    /// A registry that found these plugins at start, in this order.
    init(foundAtStart plugins: Plugin...) throws(PluginRefusal) {
        self.init()
        for plugin in plugins { try addAtStart(plugin) }
    }
}

@Suite("Which plugin serves, decided without a service")
struct PluginRegistryTests {
    @Test("at start the first file found with a name keeps it; the second is refused naming the first")
    func duplicateAtStart() throws {
        let files = PluginFiles()
        let first = try files.load("echo", file: "a")
        let second = try files.load("echo", file: "b")
        var registry = try PluginRegistry(foundAtStart: first)
        let refusal = #expect(throws: PluginRefusal.self) { try registry.addAtStart(second) }
        #expect(refusal?.reason == .duplicateName("echo", firstFile: first.file))
        #expect(registry.current["echo"] === first)
    }

    @Test("a new version of a file replaces its generation; the same bytes again change nothing")
    func newVersionAndSameBytes() throws {
        let files = PluginFiles()
        let first = try files.load("echo", answer: "one")
        var registry = try PluginRegistry(foundAtStart: first)

        let again = try Plugin.load(file: first.file)
        guard case .unchanged = registry.admission(of: again) else {
            Issue.record("the same bytes were admitted as new: \(registry.admission(of: again))")
            return
        }
        let second = try files.load("echo", answer: "two")
        guard case .new(let previous) = registry.admission(of: second) else {
            Issue.record("a new version was not admitted: \(registry.admission(of: second))")
            return
        }
        #expect(previous === first)
        #expect(registry.install(second) === first)
        #expect(registry.plugin(providedBy: second.file) === second)
    }

    @Test("while serving, another file with a taken name is refused; the owner serves on")
    func duplicateWhileServing() throws {
        let files = PluginFiles()
        let owner = try files.load("echo", file: "a")
        let registry = try PluginRegistry(foundAtStart: owner)
        let intruder = try files.load("echo", file: "b")
        guard case .refused(let refusal) = registry.admission(of: intruder) else {
            Issue.record("a second file with a taken name was admitted")
            return
        }
        #expect(refusal == PluginRefusal(file: intruder.file, reason: .duplicateName("echo", firstFile: owner.file)))
        #expect(registry.current["echo"] === owner)
    }

    @Test("a file rewritten as another behaviour: the new one is admitted with the old as its previous")
    func renamedInPlace() throws {
        let files = PluginFiles()
        let old = try files.load("before", file: "same")
        var registry = try PluginRegistry(foundAtStart: old)
        let new = try files.load("after", file: "same")
        guard case .new(let previous) = registry.admission(of: new) else {
            Issue.record("the rewritten file was not admitted")
            return
        }
        #expect(previous === old)
        #expect(registry.remove(file: new.file) === old)
        #expect(registry.install(new) == nil)
        #expect(registry.current.keys.sorted() == ["after"])
    }

    @Test("a removal takes the behaviour and the file's refusal away; the file provides nothing after")
    func removal() throws {
        let files = PluginFiles()
        let plugin = try files.load("echo")
        var registry = try PluginRegistry(foundAtStart: plugin)
        registry.refuse(PluginRefusal(file: plugin.file, reason: .noEntrySymbol))
        #expect(registry.remove(file: plugin.file) === plugin)
        #expect(registry.current.isEmpty)
        #expect(registry.plugin(providedBy: plugin.file) == nil)
        #expect(registry.sortedRefusals.isEmpty)
        #expect(registry.remove(file: plugin.file) == nil)
    }

    @Test("a retired generation is listed while something holds it, and forgotten once it is gone")
    func retiredGenerations() throws {
        let files = PluginFiles()
        var registry = PluginRegistry()
        var first: Plugin? = try files.load("echo", answer: "one")
        try registry.addAtStart(first!)
        let firstVersion = first!.versionLabel
        _ = registry.install(try files.load("echo", answer: "two"))
        #expect(registry.generations.map(\.older.count) == [1])
        #expect(registry.generations.first?.older.first?.versionLabel == firstVersion)
        // Nothing else holds the old generation: the registry must not keep it alive.
        first = nil
        registry.forgetUnloaded()
        #expect(registry.generations.map(\.older.count) == [0])
    }

    @Test("a removed behaviour still holding connections is listed as removed")
    func removedGeneration() throws {
        let files = PluginFiles()
        var registry = PluginRegistry()
        let plugin = try files.load("echo")
        try registry.addAtStart(plugin)
        _ = registry.remove(file: plugin.file)
        #expect(registry.generations.map(\.name) == ["echo"])
        #expect(registry.generations.map(\.removed) == [true])
        withExtendedLifetime(plugin) {}
    }
}

@Suite("What a server brings of its own and reports")
struct ServerConcernTests {
    @Test("a plugin with a default port brings a service in the default set-up only, and never twice")
    func defaultService() throws {
        let files = PluginFiles()
        let ported = try files.load("ported", defaultPort: 4567)
        let portless = try files.load("portless")
        let spec = Server.ServiceSource.pluginDefaults.defaultService(of: ported, running: { _ in false })
        #expect(spec?.name == "ported")
        #expect(spec?.address == .tcp(host: ServiceSpec.defaultHost, port: 4567))
        #expect(Server.ServiceSource.pluginDefaults.defaultService(of: ported, running: { $0 == "ported" }) == nil)
        #expect(Server.ServiceSource.pluginDefaults.defaultService(of: portless, running: { _ in false }) == nil)
        #expect(Server.ServiceSource.fixed([]).defaultService(of: ported, running: { _ in false }) == nil)
        #expect(Server.ServiceSource.file("cynic.yaml").defaultService(of: ported, running: { _ in false }) == nil)
    }

    @Test("a removal affects the services that run the plugin, as behaviour or as shaper")
    func usesPlugin() {
        let spec = ServiceSpec(name: "api", behaviour: "http-json", address: .tcp(host: "127.0.0.1", port: 0),
                               shapers: [ShaperSpec(shaper: "latency")], origin: "test")
        #expect(spec.uses("http-json"))
        #expect(spec.uses("latency"))
        #expect(!spec.uses("reset"))
    }

    @Test("the status text: services, generations old and removed, refusals")
    func statusText() {
        let generation = { (label: String, connections: Int) in
            StatusReport.Generation(versionLabel: label, file: "/p/echo.so", connections: connections, staysMapped: false)
        }
        let report = StatusReport(
            services: [.init(name: "api", behaviour: "echo", listening: .tcp(host: "127.0.0.1", port: 2001), openConnections: 2),
                       .init(name: "gone", behaviour: "old", listening: nil, openConnections: 1)],
            behaviours: [.init(name: "echo", current: generation("bbbb", 1), removed: false, older: [generation("aaaa", 1)]),
                         .init(name: "old", current: generation("cccc", 1), removed: true, older: [])],
            refusals: [PluginRefusal(file: "/p/bad.so", reason: .noEntrySymbol)])
        #expect(report.lines == [
            "services:",
            "  api: behaviour echo, listening on 127.0.0.1:2001, 2 open connection(s)",
            "  gone: behaviour old, not accepting (behaviour gone), 1 open connection(s)",
            "behaviours:",
            "  echo: version bbbb (/p/echo.so), 1 connection(s), unloaded when unused",
            "    older version aaaa: 1 connection(s) still on it",
            "  old (removed): version cccc, 1 connection(s) still on it",
            "refused plugin /p/bad.so: \(PluginError.noEntrySymbol)",
        ])
    }
}
