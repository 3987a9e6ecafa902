import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// How many event loops cynic runs: one per core it may run on. NIO's `System.coreCount` reads
/// the cgroup's quota and cpuset, not the process's affinity, so a cynic started under
/// `taskset -c 0` would run two loops on one core and switch between them for nothing; the
/// affinity mask says what the scheduler really gives us.
func eventLoopCount() -> Int {
    max(1, min(System.coreCount, affinityCoreCount() ?? System.coreCount))
}

/// The cores in this process's affinity mask, from /proc/self/status (Glibc's module does not
/// offer sched_getaffinity), or nil when it cannot be read. The mask may name cores the machine
/// does not have; the caller bounds it by the machine's count.
func affinityCoreCount(status path: String = "/proc/self/status") -> Int? {
    guard let file = fopen(path, "r") else { return nil }
    defer { fclose(file) }
    var line = [CChar](repeating: 0, count: 4096)
    while fgets(&line, Int32(line.count), file) != nil {
        let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard text.hasPrefix("Cpus_allowed:") else { continue }
        let mask = text.dropFirst("Cpus_allowed:".count)
        let count = mask.reduce(0) { sum, character in sum + (character.hexDigitValue?.nonzeroBitCount ?? 0) }
        return count > 0 ? count : nil
    }
    return nil
}
