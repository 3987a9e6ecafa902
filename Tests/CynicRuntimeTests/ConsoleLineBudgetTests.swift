@testable import CynicRuntime
import Testing

@Suite("The console's connection lines: a hundred a second, the rest counted")
struct ConsoleLineBudgetTests {
    @Test("within a second the first N are shown and the rest held; the next second says how many were held")
    func window() {
        var budget = ConsoleLineBudget(perSecond: 3)
        let shown = (0..<5).map { budget.admit(at: 1_000 + UInt64($0)).show }
        #expect(shown == [true, true, true, false, false])
        #expect(budget.held == 2)
        let next = budget.admit(at: 1_000 + ConsoleLineBudget.window)
        #expect(next.show)
        #expect(next.heldBefore == 2)
        #expect(budget.held == 0)
    }

    @Test("closing an ended window once gives its count; again, or before it ends, nothing")
    func close() {
        var budget = ConsoleLineBudget(perSecond: 1)
        _ = budget.admit(at: 0)
        _ = budget.admit(at: 10)
        #expect(budget.close(at: ConsoleLineBudget.window / 2) == 0)
        #expect(budget.close(at: ConsoleLineBudget.window) == 1)
        #expect(budget.close(at: ConsoleLineBudget.window * 2) == 0)
    }

    @Test("a quiet console shows every line")
    func quiet() {
        var budget = ConsoleLineBudget()
        for second in 0..<3 {
            for index in 0..<100 {
                #expect(budget.admit(at: UInt64(second) * ConsoleLineBudget.window + UInt64(index)).show)
            }
        }
    }
}
