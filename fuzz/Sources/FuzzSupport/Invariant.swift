#if canImport(Glibc)
import Glibc
#endif

/// Stops the run when an invariant fails: the line says which, and the abort makes libFuzzer
/// keep the input as a crash (`crash-<sha1>` in the run's folder) to become a regression test.
public func invariant(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String,
                      file: StaticString = #fileID, line: UInt = #line) {
    guard !condition() else { return }
    // stderr is a C global Swift 6 will not touch; descriptor 2 is the same stream.
    let text = "invariant broken at \(file):\(line): \(message())\n"
    _ = text.utf8CString.withUnsafeBufferPointer { write(2, $0.baseAddress, $0.count - 1) }
    abort()
}

/// The input as libFuzzer hands it, copied: the harnesses' decoders take arrays.
public func bytes(_ start: UnsafeRawPointer?, _ count: Int) -> [UInt8] {
    guard let start, count > 0 else { return [] }
    return Array(UnsafeRawBufferPointer(start: start, count: count))
}
