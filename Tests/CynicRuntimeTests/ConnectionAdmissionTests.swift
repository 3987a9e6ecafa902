@testable import CynicRuntime
import Dispatch
import Testing

@Suite("A service's bound on its connections, without sockets")
struct ConnectionAdmissionTests {
    @Test("up to the limit each is admitted, the next is not; a release makes one place")
    func bound() {
        let admission = ConnectionAdmission()
        #expect((0..<3).map { _ in admission.admit(limit: 3) } == [true, true, true])
        #expect(!admission.admit(limit: 3))
        #expect(admission.current == 3)
        admission.release()
        #expect(admission.admit(limit: 3))
        #expect(!admission.admit(limit: 3))
    }

    @Test("a limit lowered below those open admits none until enough have left; raised, admits at once")
    func changedLimit() {
        let admission = ConnectionAdmission()
        for _ in 0..<5 { _ = admission.admit(limit: 10) }
        #expect(!admission.admit(limit: 2))
        for _ in 0..<3 { admission.release() }
        #expect(!admission.admit(limit: 2), "two open, at the new limit")
        admission.release()
        #expect(admission.admit(limit: 2))
        #expect(admission.admit(limit: 4))
    }

    @Test("admitted from many threads at once, never more than the limit")
    func concurrent() {
        let admission = ConnectionAdmission()
        let admitted = Counter()
        DispatchQueue.concurrentPerform(iterations: 1_000) { _ in
            if admission.admit(limit: 100) { admitted.add() }
        }
        #expect(admitted.value == 100)
        #expect(admission.current == 100)
    }
}

private final class Counter: @unchecked Sendable {
    // @unchecked: guarded by `lock`.
    private let lock = DispatchSemaphore(value: 1)
    private var count = 0
    func add() { lock.wait(); count += 1; lock.signal() }
    var value: Int { lock.wait(); defer { lock.signal() }; return count }
}
