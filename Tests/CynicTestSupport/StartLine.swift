import Foundation

/// The JSON start line of `cynic serve ... --json` (or `cynic ... --json`), as a fixture reads it:
/// one line, one object, every service's bound address in it.
public struct StartLine: @unchecked Sendable {
    // @unchecked: the parsed JSON is only read.
    public let object: [String: Any]
    /// The line as cynic wrote it.
    public let text: String

    public var services: [[String: Any]] { object["services"] as? [[String: Any]] ?? [] }

    /// A service's entry, by name.
    public func service(_ name: String) -> [String: Any]? {
        services.first { $0["name"] as? String == name }
    }

    /// The port a service bound, by name.
    public func port(_ name: String) -> Int? {
        service(name)?["port"] as? Int
    }
}

extension CynicProcess {
    /// Waits for standard output's first whole line and parses it as the JSON start line; fails
    /// when it is not one JSON object, or cynic exits first.
    public func waitForStartLine(timeout: Double = 30) throws -> StartLine {
        try waitFor("\n", timeout: timeout)
        let text = String(standardOutput.prefix { $0 != "\n" })
        guard let object = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] else {
            throw StartFailed(description: "the first line is not a JSON object: \(text)\n\(standardError)")
        }
        return StartLine(object: object, text: text)
    }
}
