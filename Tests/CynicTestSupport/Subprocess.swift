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
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable.hasPrefix("/") ? executable : "/usr/bin/env")
    process.arguments = executable.hasPrefix("/") ? arguments : [executable] + arguments
    if let environment { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
    let output = Pipe(), error = Pipe(), standardInput = Pipe()
    process.standardOutput = output
    process.standardError = error
    process.standardInput = standardInput
    try withSignalsUnblocked { try process.run() }
    if let input { standardInput.fileHandleForWriting.write(Data(input.utf8)) }
    try? standardInput.fileHandleForWriting.close()
    // Read both pipes while the program runs, so a chatty one cannot block on a full pipe.
    let collected = CollectedOutput()
    let readers = DispatchGroup()
    for (pipe, keyPath) in [(output, \CollectedOutput.out), (error, \CollectedOutput.err)] {
        readers.enter()
        DispatchQueue.global().async {
            let data = pipe.fileHandleForReading.readDataToEndOfFile()
            collected.set(keyPath, data)
            readers.leave()
        }
    }
    let deadline = Date().addingTimeInterval(timeout)
    while process.isRunning, Date() < deadline { usleep(10_000) }
    if process.isRunning {
        process.terminate()
        kill(process.processIdentifier, SIGKILL)
        throw ProgramTimedOut(command: ([executable] + arguments).joined(separator: " "))
    }
    process.waitUntilExit()
    readers.wait()
    return ProgramResult(status: process.terminationStatus,
                         standardOutput: String(decoding: collected.out, as: UTF8.self),
                         standardError: String(decoding: collected.err, as: UTF8.self))
}

/// Runs `body` (which starts a program) with no signal blocked in this thread, restoring the mask
/// after. A program inherits its parent thread's signal mask, and Dispatch's threads, which run
/// the tests, block SIGTERM, SIGALRM and most others: a server started from one would ignore
/// SIGTERM and `signal.alarm` would never fire in a Python client.
public func withSignalsUnblocked<T>(_ body: () throws -> T) rethrows -> T {
    var none = sigset_t(), previous = sigset_t()
    sigemptyset(&none)
    pthread_sigmask(SIG_SETMASK, &none, &previous)
    defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
    return try body()
}

private final class CollectedOutput: @unchecked Sendable {
    // @unchecked: guarded by `lock`.
    private let lock = NSLock()
    var out = Data()
    var err = Data()

    func set(_ keyPath: ReferenceWritableKeyPath<CollectedOutput, Data>, _ data: Data) {
        lock.lock()
        self[keyPath: keyPath] = data
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

/// Runs a Python snippet with `python3 -c` and returns its result.
public func runPython(_ code: String, _ arguments: [String] = [], timeout: Double = 60) throws -> ProgramResult {
    try runProgram("python3", ["-c", code] + arguments, timeout: timeout)
}
