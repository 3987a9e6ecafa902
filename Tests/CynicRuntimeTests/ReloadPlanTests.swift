import CynicConfig
import CynicPlugins
import CynicRuntime
import Testing

@Suite("What a reload does to each service")
struct ReloadPlanTests {
    static func spec(_ name: String, port: Int, behaviour: String = "random", length: String? = nil) -> ServiceSpec {
        ServiceSpec(name: name, behaviour: behaviour, address: .tcp(host: "127.0.0.1", port: port),
                    parameters: length.map { ["length": ParameterInput($0, origin: "f")] } ?? [:], origin: "f")
    }

    static func running(_ specs: ServiceSpec...) -> [ReloadPlan.Running] {
        specs.map { ReloadPlan.Running(spec: $0, listen: ListenSettings()) }
    }

    static func wanted(_ specs: ServiceSpec..., listen: ListenSettings = ListenSettings()) -> [ReloadPlan.Wanted] {
        specs.map { ReloadPlan.Wanted(spec: $0, listen: listen) }
    }

    @Test("unchanged stays, removed goes, a changed parameter keeps its listener, a new address listens anew")
    func everyKind() {
        let plan = ReloadPlan(
            running: Self.running(Self.spec("steady", port: 1), Self.spec("gone", port: 2), Self.spec("tuned", port: 3, length: "3")),
            wanted: Self.wanted(Self.spec("steady", port: 1), Self.spec("tuned", port: 3, length: "5"), Self.spec("fresh", port: 4)))
        #expect(plan.steps == [.keep("steady"), .handOver(from: "tuned", to: Self.spec("tuned", port: 3, length: "5")),
                               .listen(Self.spec("fresh", port: 4))])
        #expect(plan.removed == ["gone"])
    }

    @Test("a service moved to another address listens there; its old listener is removed")
    func moved() {
        let plan = ReloadPlan(running: Self.running(Self.spec("a", port: 1)), wanted: Self.wanted(Self.spec("a", port: 2)))
        #expect(plan.steps == [.listen(Self.spec("a", port: 2))])
        #expect(plan.removed == ["a"])
    }

    @Test("a renamed service at the same fixed address takes over the listener")
    func renamed() {
        let plan = ReloadPlan(running: Self.running(Self.spec("old", port: 7)), wanted: Self.wanted(Self.spec("new", port: 7)))
        #expect(plan.steps == [.handOver(from: "old", to: Self.spec("new", port: 7))])
        #expect(plan.removed.isEmpty)
    }

    @Test("port 0 is the same address only for the same service")
    func anyPort() {
        let plan = ReloadPlan(running: Self.running(Self.spec("a", port: 0), Self.spec("b", port: 0)),
                              wanted: Self.wanted(Self.spec("a", port: 0, length: "9"), Self.spec("c", port: 0)))
        #expect(plan.steps == [.handOver(from: "a", to: Self.spec("a", port: 0, length: "9")), .listen(Self.spec("c", port: 0))])
        #expect(plan.removed == ["b"])
    }

    @Test("an unchanged service's listener is never given to another, even one written first")
    func keptFirst() {
        let plan = ReloadPlan(running: Self.running(Self.spec("a", port: 5)),
                              wanted: Self.wanted(Self.spec("b", port: 5), Self.spec("a", port: 5)))
        #expect(plan.steps == [.listen(Self.spec("b", port: 5)), .keep("a")])
    }

    @Test("new listen settings at the same address: rebound at commit, not handed over")
    func listenSettingsChange() {
        let plan = ReloadPlan(running: Self.running(Self.spec("z", port: 6, length: "1")),
                              wanted: Self.wanted(Self.spec("z", port: 6, length: "2"), listen: ListenSettings(receiveBuffer: 4096)))
        #expect(plan.steps == [.rebind(from: "z", to: Self.spec("z", port: 6, length: "2"))])
    }

    @Test("a service not listening (its behaviour gone) hands over nothing: the changed one binds anew")
    func suspended() {
        let plan = ReloadPlan(running: [ReloadPlan.Running(spec: Self.spec("s", port: 8), listen: nil)],
                              wanted: Self.wanted(Self.spec("s", port: 8, length: "4")))
        #expect(plan.steps == [.listen(Self.spec("s", port: 8, length: "4"))])
        #expect(plan.removed == ["s"])
    }

    @Test("a plugin's zeros are the host's defaults")
    func listenDefaults() {
        #expect(ListenSettings(nil) == ListenSettings())
        #expect(ListenSettings().backlog == 1024)
    }
}
