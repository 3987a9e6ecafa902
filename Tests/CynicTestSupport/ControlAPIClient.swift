import Foundation

/// `cynic serve --api 127.0.0.1:0` — the control API alone, on a free port — and curl, the
/// client users type, to talk to it.
public final class CynicWithAPI: @unchecked Sendable {
    // @unchecked: immutable after init; CynicProcess guards its own output.
    public let cynic: CynicProcess
    /// "http://127.0.0.1:PORT".
    public let url: String

    /// `arguments` start cynic (`serve` by default); `--api 127.0.0.1:0` is added.
    public init(_ extraArguments: [String] = [], command: [String] = ["serve"], environment: [String: String] = [:]) throws {
        cynic = try CynicProcess(command + ["--api", "127.0.0.1:0"] + extraArguments, environment: environment)
        try cynic.waitFor("control API listening on http://")
        let line = cynic.standardOutput.split(separator: "\n").first { $0.hasPrefix("control API listening on ") }!
        url = String(line.dropFirst("control API listening on ".count))
    }

    /// An answer: its status and its body, parsed when it is JSON.
    public struct Answer: CustomStringConvertible {
        public let status: Int
        public let body: String
        public var json: Any? { try? JSONSerialization.jsonObject(with: Data(body.utf8), options: [.fragmentsAllowed]) }
        public var object: [String: Any] { json as? [String: Any] ?? [:] }
        public var array: [[String: Any]] { json as? [[String: Any]] ?? [] }
        public var description: String { "\(status) \(body)" }
    }

    /// `curl -X METHOD URL/PATH [-d BODY]`.
    public func call(_ method: String, _ path: String, _ body: String? = nil, headers: [String] = []) throws -> Answer {
        var arguments = ["-sS", "--max-time", "10", "-X", method, "-w", "\n%{http_code}"]
        for header in headers { arguments += ["-H", header] }
        if let body { arguments += ["-H", "Content-Type: application/json", "--data-binary", body] }
        let result = try runProgram("/usr/bin/env", ["curl"] + arguments + [url + path], timeout: 20)
        let output = result.standardOutput
        let split = output.lastIndex(of: "\n").map { (String(output[..<$0]), String(output[output.index(after: $0)...])) } ?? ("", output)
        return Answer(status: Int(split.1) ?? 0, body: split.0)
    }

    /// The port of a service's `listen` ("127.0.0.1:PORT") in an answer.
    public static func port(of service: [String: Any]) -> Int {
        (service["listen"] as? String).flatMap { $0.split(separator: ":").last.flatMap { Int($0) } } ?? 0
    }
}
