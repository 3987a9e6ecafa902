import Foundation
import NIOHTTP1

/// The resources of the control API (docs/control-api.md) as `cynic ctl` reads them. Only what a
/// command shows is required; the rest is optional, so an API that adds a field or leaves one
/// out is still understood.
public enum ControlAPI {
    public struct Service: Decodable, Sendable, Equatable {
        public var name: String
        public var behaviour: String
        /// The address bound: a service created with port 0 shows the port the kernel chose.
        public var listen: String
        public var parameters: [String: Text]?
        public var shapers: [Shaper]?
        public var enabled: Bool?
        /// False while an enabled service could not bind its address.
        public var listening: Bool?
        public var seed: UInt64?
        public var tls: TLS?
        public var origin: String?
        public var connections: Connections?
    }

    /// A service's TLS; absent or null for plain TCP.
    public struct TLS: Decodable, Sendable, Equatable {
        public var profile: String?
        public var certificate: String?
        public var alpn: [String]?
        public var min_version: String?
        public var max_version: String?
    }

    public struct Connections: Decodable, Sendable, Equatable {
        public var open: Int
        public var accepted: Int
    }

    public struct Shaper: Decodable, Sendable, Equatable {
        public var name: String
        public var shaper: String
        public var direction: String?
        public var probability: Double?
        public var parameters: [String: Text]?
    }

    /// `GET /plugins`.
    public struct PluginList: Decodable, Sendable, Equatable {
        public var plugins: [Plugin]
        public var refused: [Refusal]?
    }

    public struct Plugin: Decodable, Sendable, Equatable {
        public var name: String
        public var kind: String?
        public var summary: String?
        public var file: String?
        public var version: String?
        public var generations: [Generation]?
    }

    /// One loaded version of a plugin; an older one lives while its connections do.
    public struct Generation: Decodable, Sendable, Equatable {
        public var version: String?
        public var file: String?
        public var connections: Int?
        public var current: Bool?
    }

    public struct Refusal: Decodable, Sendable, Equatable {
        public var file: String
        public var reason: String
    }

    /// `GET /events`.
    public struct EventPage: Decodable, Sendable, Equatable {
        public var events: [Event]
        public var lastID: Int?

        enum CodingKeys: String, CodingKey {
            case events
            case lastID = "last_id"
        }
    }

    /// One connection, recorded when it ended.
    public struct Event: Decodable, Sendable, Equatable {
        public var id: Int?
        public var service: String?
        public var peer: String?
        public var client: Bytes?
        public var upstream: Bytes?
        public var started: String?
        public var durationMS: Double?
        public var end: String?
        public var endedBy: String?
        public var reason: String?

        enum CodingKeys: String, CodingKey {
            case id, service, peer, client, upstream, started, end, reason
            case durationMS = "duration_ms"
            case endedBy = "ended_by"
        }
    }

    public struct Bytes: Decodable, Sendable, Equatable {
        public var bytesIn: Int?
        public var bytesOut: Int?

        enum CodingKeys: String, CodingKey {
            case bytesIn = "bytes_in"
            case bytesOut = "bytes_out"
        }
    }

    /// A parameter's value: text on output, but a number or a boolean is read as its text too.
    public struct Text: Decodable, Sendable, Equatable, CustomStringConvertible {
        public var description: String

        public init(_ text: String) { description = text }

        public init(from decoder: any Decoder) throws {
            let value = try decoder.singleValueContainer()
            if let text = try? value.decode(String.self) {
                description = text
            } else if let flag = try? value.decode(Bool.self) {
                description = "\(flag)"
            } else if let integer = try? value.decode(Int64.self) {
                description = "\(integer)"
            } else {
                description = "\(try value.decode(Double.self))"
            }
        }
    }

    /// An error answer: `{"error", "status", "field"?}`.
    public struct Failure: Decodable, Sendable {
        public var error: String
        public var field: String?

        /// The API's error as it worded it; for a body that is not one (a proxy's page, a
        /// router's 404), the status and the body's first line.
        static func decode(status: Int, body: [UInt8]) -> ControlClientError {
            if let failure = try? JSONDecoder().decode(Failure.self, from: Data(body)) {
                return .refused(status: status, message: failure.error, field: failure.field)
            }
            let firstLine = String(decoding: body.prefix(200), as: UTF8.self).split(separator: "\n").first.map(String.init) ?? ""
            let reason = HTTPResponseStatus(statusCode: status).reasonPhrase
            return .refused(status: status, message: "HTTP \(status) \(reason)" + (firstLine.isEmpty ? "" : ": \(firstLine)"), field: nil)
        }
    }

    /// Reads an answer's body as `type`; an answer that does not fit says so in one line.
    public static func decode<Resource: Decodable>(_ type: Resource.Type, from body: [UInt8]) throws(ControlClientError) -> Resource {
        do {
            return try JSONDecoder().decode(type, from: Data(body))
        } catch {
            throw .unexpected("an answer cynic's control API would not send: \(describe(error))")
        }
    }

    private static func describe(_ error: any Error) -> String {
        guard let error = error as? DecodingError else { return "\(error)" }
        switch error {
        case .keyNotFound(let key, let context):
            return "no '\(key.stringValue)' at \(path(context))"
        case .typeMismatch(let expected, let context), .valueNotFound(let expected, let context):
            return "expected \(noun(expected)) at \(path(context))"
        case .dataCorrupted(let context):
            return context.codingPath.isEmpty ? "not JSON" : "\(context.debugDescription) at \(path(context))"
        @unknown default:
            return "\(error)"
        }
    }

    /// What a user calls a JSON value of `type`.
    private static func noun(_ type: Any.Type) -> String {
        let name = "\(type)"
        if name.hasPrefix("Array") { return "a list" }
        if name.hasPrefix("Dictionary") { return "an object" }
        if name == "String" { return "a string" }
        if name == "Bool" { return "true or false" }
        return "a number"
    }

    private static func path(_ context: DecodingError.Context) -> String {
        let path = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
        return path.isEmpty ? "the top" : path
    }
}
