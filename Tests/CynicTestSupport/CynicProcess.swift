import Foundation

/// The `cynic` executable running as a user runs it, with its output collected as it comes.
public final class CynicProcess: @unchecked Sendable {
    // @unchecked: the output buffers are guarded by `lock`; the rest is immutable.
    public let process: ChildProcess
    private let lock = NSLock()
    private var out = ""
    private var err = ""

    public struct StartFailed: Error, CustomStringConvertible {
        public let description: String
        public init(description: String) { self.description = description }
    }

    /// Starts `cynic arguments...` (the one built with the tests, unless told otherwise).
    public init(_ arguments: [String], environment: [String: String] = [:], executable: String = Paths.cynic) throws {
        process = try ChildProcess(executable, arguments, environment: environment)
        // The readers hold the object weakly: a dropped CynicProcess is stopped (deinit), and
        // its readers then see EOF.
        process.streamOutput { [weak self] bytes in self?.append(Data(bytes), toError: false) }
        process.streamError { [weak self] bytes in self?.append(Data(bytes), toError: true) }
    }

    deinit { stop() }

    private func append(_ data: Data, toError: Bool) {
        guard !data.isEmpty else { return }
        lock.lock()
        if toError { err += String(decoding: data, as: UTF8.self) } else { out += String(decoding: data, as: UTF8.self) }
        lock.unlock()
    }

    public var standardOutput: String { lock.lock(); defer { lock.unlock() }; return out }
    public var standardError: String { lock.lock(); defer { lock.unlock() }; return err }

    /// Waits until standard output (or, with `inError`, standard error) contains `text`; fails
    /// when cynic exits first or `timeout` seconds pass.
    public func waitFor(_ text: String, inError: Bool = false, timeout: Double = 30) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if (inError ? standardError : standardOutput).contains(text) { return }
            if !process.isRunning {
                usleep(50_000)  // let the last output arrive
                if (inError ? standardError : standardOutput).contains(text) { return }
                throw StartFailed(description: "cynic exited (\(process.terminationStatus)) before printing '\(text)':\n\(standardOutput)\(standardError)")
            }
            usleep(10_000)
        }
        throw StartFailed(description: "no '\(text)' after \(timeout) s:\n\(standardOutput)\(standardError)")
    }

    /// The ports of the "listening on 127.0.0.1:PORT" lines, by service name.
    public func waitForServices(_ count: Int, timeout: Double = 30) throws -> [String: Int] {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let ports = Self.servicePorts(in: standardOutput)
            if ports.count >= count { return ports }
            try waitFor("listening on", timeout: max(0.1, deadline.timeIntervalSinceNow))
            if Date() > deadline {
                throw StartFailed(description: "expected \(count) services:\n\(standardOutput)\(standardError)")
            }
            usleep(20_000)
        }
    }

    static func servicePorts(in output: String) -> [String: Int] {
        var ports: [String: Int] = [:]
        for line in output.split(separator: "\n") where line.hasPrefix("service ") {
            guard let colon = line.firstIndex(of: ":"), let portText = line.split(separator: ":").last,
                  let port = Int(portText) else { continue }
            ports[String(line[line.index(line.startIndex, offsetBy: 8)..<colon])] = port
        }
        return ports
    }

    /// Waits for cynic to exit on its own; returns its status.
    public func waitForExit(timeout: Double = 30) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning, Date() < deadline { usleep(10_000) }
        guard !process.isRunning else { return nil }
        process.waitUntilExit()
        usleep(50_000)
        return process.terminationStatus
    }

    /// SIGTERM, then SIGKILL if it does not stop within a few seconds.
    public func stop() {
        guard process.isRunning else { return }
        process.terminate()
        if waitForExit(timeout: 5) == nil {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}

/// A TCP port free right now on 127.0.0.1 (the kernel's pick, released at once).
public func freePort() -> Int {
    RefusingPort().port
}
