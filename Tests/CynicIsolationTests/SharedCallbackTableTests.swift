import CynicIsolation
import CynicRuntime
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The slots a worker shares with its supervisor, read back as the supervisor reads them, and the
/// link that hands descriptors over: within one process, through the real memfd and socketpair.
@Suite("Shared callback table and the supervisor's link")
struct SharedCallbackTableTests {
    @Test("the call running on a slot is read back from a second mapping with its plugin, file, version and service")
    func crashReadBack() throws {
        let table = try SharedCallbackTable.create()
        let registry = CallbackRegistry()
        registry.publish(to: table)
        let label = registry.label(plugin: "crasher", file: "/p/crasher.so", version: "abc123", service: "crashy")
        _ = registry.label(plugin: "random", file: "/p/random.so", version: "def", service: "quick")
        let slot = registry.slotForCurrentThread()
        // The supervisor maps the same memory through its own descriptor.
        let reader = try SharedCallbackTable(mapping: dup(table.descriptor))
        #expect(reader.crash() == nil)
        slot.enter(RunningCall(label: label, callback: .connOpen))
        let crash = try #require(reader.crash())
        #expect(crash.label == SharedCallbackTable.Label(plugin: "crasher", file: "/p/crasher.so", version: "abc123", service: "crashy"))
        #expect(crash.callback == .connOpen)
        // No crash handler ran: the only call running is named, as a guess.
        #expect(!crash.noted)
        slot.leave()
        #expect(reader.crash() == nil)
        // The watchdog reads the same words.
        #expect(slot.sample().running == 0 && slot.sample().sequence == 1)
    }

    @Test("with a crashing thread noted, its call is the one named, whatever else runs")
    func notedThread() throws {
        let table = try SharedCallbackTable.create()
        let registry = CallbackRegistry()
        registry.publish(to: table)
        let slot = registry.slotForCurrentThread()
        slot.enter(RunningCall(label: registry.label(plugin: "a", service: "one"), callback: .connData))
        table.crashingThreadWord.pointee = 999_999  // a thread with no slot
        #expect(table.crash() == nil)
        table.crashingThreadWord.pointee = 0
        #expect(table.crash()?.label?.plugin == "a")
    }

    @Test("a message and its descriptors cross the link; EOF when the other end closes")
    func link() throws {
        let (ours, theirs) = try MessageSocket.pair()
        var other: MessageSocket? = MessageSocket(descriptor: theirs)
        var pipeEnds: [Int32] = [0, 0]
        #expect(pipe(&pipeEnds) == 0)
        try other?.send(WorkerReport.listener(service: "quick"), descriptors: [pipeEnds[1]])
        close(pipeEnds[1])
        let (report, descriptors) = try #require(try ours.receive(WorkerReport.self))
        #expect(report == .listener(service: "quick"))
        #expect(descriptors.count == 1)
        // The copy that came is the pipe's write end: what it writes, the read end reads.
        #expect(write(descriptors[0], "x", 1) == 1)
        var byte: UInt8 = 0
        #expect(read(pipeEnds[0], &byte, 1) == 1 && byte == UInt8(ascii: "x"))
        close(descriptors[0])
        close(pipeEnds[0])
        other = nil
        #expect(try ours.receive(WorkerReport.self) == nil)
    }
}
