import CynicConfig
import Foundation

/// The bodies `cynic ctl` sends, and the paths it sends them to.
extension ControlAPI {
    /// `POST /services`. A nil field is left out: the API's default applies.
    public struct NewService: Encodable, Sendable {
        public var name: String
        public var behaviour: String
        public var listen: String?
        public var parameters: [String: String]?
        public var shapers: [NewShaper]?
        public var enabled: Bool?
        public var seed: UInt64?
        /// A certificate profile: the service speaks TLS.
        public var tls: String?

        public init(name: String, behaviour: String, listen: String? = nil, parameters: [String: String]? = nil,
                    shapers: [NewShaper]? = nil, enabled: Bool? = nil, seed: UInt64? = nil, tls: String? = nil) {
            self.tls = tls
            self.name = name
            self.behaviour = behaviour
            self.listen = listen
            self.parameters = parameters
            self.shapers = shapers
            self.enabled = enabled
            self.seed = seed
        }
    }

    /// `PATCH /services/{name}`: only the fields given change; `parameters` replaces them all.
    public struct ServiceChange: Encodable, Sendable {
        public var behaviour: String?
        public var listen: String?
        public var parameters: [String: String]?
        public var enabled: Bool?
        public var seed: UInt64?

        public init(behaviour: String? = nil, listen: String? = nil, parameters: [String: String]? = nil,
                    enabled: Bool? = nil, seed: UInt64? = nil) {
            self.behaviour = behaviour
            self.listen = listen
            self.parameters = parameters
            self.enabled = enabled
            self.seed = seed
        }
    }

    /// A shaper to add: `POST /services/{name}/shapers`, or one of `NewService.shapers`.
    public struct NewShaper: Encodable, Sendable, Equatable {
        public var shaper: String
        /// Sent only when chosen (`name=`): the API names a shaper, and a repeat, itself.
        public var name: String?
        public var direction: String
        public var probability: Double
        public var parameters: [String: String]

        /// The `NAME[:key=value,...]` of `--shape`, as `cynic serve` reads it.
        public init(_ spec: ShaperSpec) {
            shaper = spec.shaper
            name = spec.name == spec.shaper ? nil : spec.name
            direction = spec.direction.rawValue
            probability = spec.probability
            parameters = spec.parameters.mapValues(\.text)
        }
    }

    /// `value` as JSON, keys sorted (a request reads the same every time).
    public static func encode(_ value: some Encodable) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding these plain structs of strings and numbers cannot fail.
        return Array((try? encoder.encode(value)) ?? Data("{}".utf8))
    }

    /// `/services/db%2F1/shapers` from "services", "db/1", "shapers": each segment escaped.
    public static func path(_ segments: String...) -> String {
        var allowed = CharacterSet.urlPathAllowed
        allowed.remove("/")
        return segments.map { "/" + ($0.addingPercentEncoding(withAllowedCharacters: allowed) ?? $0) }.joined()
    }

    /// `path` with the query items that have a value, escaped: `/events?service=db&limit=5`.
    public static func path(_ path: String, query: [(String, String?)]) -> String {
        var allowed = CharacterSet.urlQueryAllowed
        allowed.remove(charactersIn: "&=+#")
        let items = query.compactMap { name, value in
            value.map { "\(name)=\($0.addingPercentEncoding(withAllowedCharacters: allowed) ?? $0)" }
        }
        return items.isEmpty ? path : path + "?" + items.joined(separator: "&")
    }
}
