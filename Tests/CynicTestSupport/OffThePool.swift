import Foundation

/// Runs blocking work (a socket read, a polling loop) on a thread of its own and awaits it.
///
/// Async tests run on Swift's cooperative pool, which has one thread per core: a test that
/// blocks one of them can starve the actors of the code under test (cynic's `Server`) on a
/// 2-core machine.
public func offThePool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread { continuation.resume(with: Result { try body() }) }
    }
}
