import Foundation
import Logging

/// A logger whose lines a test can read back.
public final class CapturedLog: @unchecked Sendable {
    // @unchecked: `lines` is guarded by `lock`.
    private let lock = NSLock()
    private var lines: [String] = []
    private let showsMetadata: Bool

    /// With `showsMetadata`, a line with metadata reads `level [key=value ...] message`.
    public init(showsMetadata: Bool = false) {
        self.showsMetadata = showsMetadata
    }

    public var logger: Logger {
        Logger(label: "cynic.test") { _ in Handler(log: self) }
    }

    public var text: String {
        lock.lock(); defer { lock.unlock() }
        return lines.joined(separator: "\n")
    }

    /// Waits until a line contains `fragment`; false after `timeout` seconds.
    public func waitFor(_ fragment: String, timeout: Double = 10) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if text.contains(fragment) { return true }
            usleep(10_000)
        }
        return false
    }

    fileprivate func append(_ line: String) {
        lock.lock(); lines.append(line); lock.unlock()
    }

    private struct Handler: LogHandler {
        let log: CapturedLog
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .debug
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            let all = metadata.merging(event.metadata ?? [:]) { $1 }
            guard log.showsMetadata, !all.isEmpty else {
                log.append("\(event.level) \(event.message)")
                return
            }
            let pairs = all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            log.append("\(event.level) [\(pairs)] \(event.message)")
        }
    }
}
