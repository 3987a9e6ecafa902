import Foundation

/// What a finished program printed and how it ended.
public struct ProgramResult: Sendable {
    public let status: Int32
    public let standardOutput: String
    public let standardError: String
    public var output: String { standardOutput + standardError }
}

public struct ProgramTimedOut: Error, CustomStringConvertible {
    public let command: String
    public var description: String { "timed out: \(command)" }
}

/// Runs a program to its end (killing it after `timeout` seconds) and returns its output.
public func runProgram(_ executable: String, _ arguments: [String], input: String? = nil,
                       environment: [String: String]? = nil, timeout: Double = 60) throws -> ProgramResult {
    let child = try ChildProcess(executable, arguments, environment: environment ?? [:], standardInput: .pipe)
    child.writeInputAndClose(Array((input ?? "").utf8))
    // Read both pipes while the program runs, so a chatty one cannot block on a full pipe. On
    // threads of their own, not Dispatch's global queue: on Linux that queue shares its few
    // threads with Swift's cooperative pool, where the caller usually is, blocked here; many tests
    // running programs at once would each wait for a reader that waits for one of them.
    let collected = CollectedOutput()
    let readers = DispatchGroup()
    readers.enter()
    Thread.detachNewThread {
        collected.set(\.out, child.readOutputToEnd())
        readers.leave()
    }
    readers.enter()
    Thread.detachNewThread {
        collected.set(\.err, child.readErrorToEnd())
        readers.leave()
    }
    guard child.waitForExit(timeout: timeout) else {
        kill(child.processIdentifier, SIGKILL)
        child.waitUntilExit()
        throw ProgramTimedOut(command: ([executable] + arguments).joined(separator: " "))
    }
    readers.wait()
    return ProgramResult(status: child.terminationStatus,
                         standardOutput: String(decoding: collected.out, as: UTF8.self),
                         standardError: String(decoding: collected.err, as: UTF8.self))
}

private final class CollectedOutput: @unchecked Sendable {
    // @unchecked: guarded by `lock`.
    private let lock = NSLock()
    var out: [UInt8] = []
    var err: [UInt8] = []

    func set(_ keyPath: ReferenceWritableKeyPath<CollectedOutput, [UInt8]>, _ bytes: [UInt8]) {
        lock.lock()
        self[keyPath: keyPath] = bytes
        lock.unlock()
    }
}

/// Whether a program is on PATH (curl, python3...).
public func programExists(_ name: String) -> Bool {
    executablePath(of: name) != nil
}

/// The full path of the program `name` as the shell would find it on PATH, or nil.
public func executablePath(of name: String) -> String? {
    if name.contains("/") { return FileManager.default.isExecutableFile(atPath: name) ? name : nil }
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
    return path.split(separator: ":").map { "\($0)/\(name)" }
        .first { FileManager.default.isExecutableFile(atPath: $0) }
}

/// Whether `python3 -m pytest` runs here (CI installs it: tests that need it run there whatever).
public let pytestIsInstalled = (try? runPython("import pytest"))?.status == 0

/// Runs a Python snippet with `python3 -c` and returns its result.
public func runPython(_ code: String, _ arguments: [String] = [], timeout: Double = 60) throws -> ProgramResult {
    try runProgram("python3", ["-c", code] + arguments, timeout: timeout)
}
