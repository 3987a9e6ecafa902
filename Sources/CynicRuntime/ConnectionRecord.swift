import NIOCore
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// One client connection, as it ended: made by its driver when the connection ends, numbered by
/// the event log. Encodes to the JSON of docs/control-api.md ("Events"): snake_case keys,
/// `upstream` and `reason` null when absent.
public struct ConnectionRecord: Sendable, Encodable {
    /// 1, 2, ... in the order records reached the log; 0 until then.
    public internal(set) var id: UInt64 = 0
    public let service: String
    public let behaviour: String
    /// The behaviour's generation (`Plugin.versionLabel`).
    public let version: String
    /// "127.0.0.1:51234", "[::1]:51234", a Unix socket's path; nil when unknown.
    public let peer: String?
    /// Every shaper of the service's setup, in order, with whether it was drawn for this one.
    public let shapers: [Shaper]
    public let client: Bytes
    /// The upstream connections the behaviour opened, summed; nil when it tried none.
    public let upstream: Upstream?
    /// Wall clock, when the connection was accepted.
    public let started: Date
    public let duration: Duration
    public let end: ConnectionEnd

    public init(service: String, behaviour: String, version: String, peer: String?, shapers: [Shaper], client: Bytes,
                upstream: Upstream?, started: Date, duration: Duration, end: ConnectionEnd) {
        self.service = service
        self.behaviour = behaviour
        self.version = version
        self.peer = peer
        self.shapers = shapers
        self.client = client
        self.upstream = upstream
        self.started = started
        self.duration = duration
        self.end = end
    }

    public struct Shaper: Sendable, Encodable, Equatable {
        /// Its name in the service.
        public let name: String
        /// The shaper plugin.
        public let shaper: String
        /// "downstream" or "upstream".
        public let direction: String
        public let applied: Bool

        public init(name: String, shaper: String, direction: String, applied: Bool) {
            self.name = name
            self.shaper = shaper
            self.direction = direction
            self.applied = applied
        }
    }

    public struct Bytes: Sendable, Encodable, Equatable {
        /// Read from the peer.
        public let bytesIn: Int
        /// Written to the peer (the writes that completed).
        public let bytesOut: Int

        public init(bytesIn: Int, bytesOut: Int) {
            self.bytesIn = bytesIn
            self.bytesOut = bytesOut
        }

        enum CodingKeys: String, CodingKey {
            case bytesIn = "bytes_in"
            case bytesOut = "bytes_out"
        }
    }

    public struct Upstream: Sendable, Encodable, Equatable {
        /// Connections established.
        public let connections: Int
        public let bytesIn: Int
        public let bytesOut: Int
        /// Each connect that failed.
        public let failed: [Failure]

        public init(connections: Int, bytesIn: Int, bytesOut: Int, failed: [Failure]) {
            self.connections = connections
            self.bytesIn = bytesIn
            self.bytesOut = bytesOut
            self.failed = failed
        }

        public struct Failure: Sendable, Encodable, Equatable {
            public let address: String
            /// strerror's text: "Connection refused".
            public let error: String

            public init(address: String, error: String) {
                self.address = address
                self.error = error
            }
        }

        enum CodingKeys: String, CodingKey {
            case connections, failed
            case bytesIn = "bytes_in"
            case bytesOut = "bytes_out"
        }
    }

    public var durationMilliseconds: Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) * 1000 + Double(attoseconds) / 1e15
    }

    /// `started` as RFC 3339, UTC, with milliseconds: "2026-12-01T12:00:00.123Z".
    public var startedText: String { Self.timestamp.format(started) }

    static let timestamp = Date.ISO8601FormatStyle(includingFractionalSeconds: true)

    enum CodingKeys: String, CodingKey {
        case id, service, behaviour, version, peer, shapers, client, upstream, started, end, reason
        case durationMilliseconds = "duration_ms"
        case endedBy = "ended_by"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(service, forKey: .service)
        try container.encode(behaviour, forKey: .behaviour)
        try container.encode(version, forKey: .version)
        try container.encode(peer, forKey: .peer)
        try container.encode(shapers, forKey: .shapers)
        try container.encode(client, forKey: .client)
        // encode, not encodeIfPresent: absent is null, as the contract says.
        try container.encode(upstream, forKey: .upstream)
        try container.encode(startedText, forKey: .started)
        try container.encode(roundedMilliseconds, forKey: .durationMilliseconds)
        try container.encode(end.kind.rawValue, forKey: .end)
        try container.encode(end.endedBy.description, forKey: .endedBy)
        try container.encode(end.reason, forKey: .reason)
    }

    /// Microseconds are plenty; fewer digits read better.
    private var roundedMilliseconds: Double { (durationMilliseconds * 1000).rounded() / 1000 }

    /// The record as one line of JSON (no newline), its keys in the contract's order: what the
    /// events file gets. The same object as `encode(to:)` gives, whose order is the encoder's.
    public var jsonLine: String {
        let json = JSONLine()
        json.object {
            json.field("id") { json.number(id) }
            json.field("service") { json.string(service) }
            json.field("behaviour") { json.string(behaviour) }
            json.field("version") { json.string(version) }
            json.field("peer") { json.string(peer) }
            json.field("shapers") {
                json.array(shapers) { shaper in
                    json.object {
                        json.field("name") { json.string(shaper.name) }
                        json.field("shaper") { json.string(shaper.shaper) }
                        json.field("direction") { json.string(shaper.direction) }
                        json.field("applied") { json.text += shaper.applied ? "true" : "false" }
                    }
                }
            }
            json.field("client") {
                json.object {
                    json.field("bytes_in") { json.number(client.bytesIn) }
                    json.field("bytes_out") { json.number(client.bytesOut) }
                }
            }
            json.field("upstream") {
                guard let upstream else { return json.text += "null" }
                json.object {
                    json.field("connections") { json.number(upstream.connections) }
                    json.field("bytes_in") { json.number(upstream.bytesIn) }
                    json.field("bytes_out") { json.number(upstream.bytesOut) }
                    json.field("failed") {
                        json.array(upstream.failed) { failure in
                            json.object {
                                json.field("address") { json.string(failure.address) }
                                json.field("error") { json.string(failure.error) }
                            }
                        }
                    }
                }
            }
            json.field("started") { json.string(startedText) }
            json.field("duration_ms") { json.text += "\(roundedMilliseconds)" }
            json.field("end") { json.string(end.kind.rawValue) }
            json.field("ended_by") { json.string(end.endedBy.description) }
            json.field("reason") { json.string(end.reason) }
        }
        return json.text
    }
}

/// JSON written in the order it is said, for `ConnectionRecord.jsonLine`. A class: the closures
/// that write a value's fields write to the same text.
private final class JSONLine {
    var text = ""
    private var needsComma = false

    func object(_ body: () -> Void) {
        text += "{"
        needsComma = false
        body()
        text += "}"
        needsComma = true
    }

    func array<T>(_ items: [T], _ body: (T) -> Void) {
        text += "["
        for (index, item) in items.enumerated() {
            if index > 0 { text += "," }
            body(item)
        }
        text += "]"
    }

    func field(_ key: String, _ value: () -> Void) {
        if needsComma { text += "," }
        string(key)
        text += ":"
        value()
        needsComma = true
    }

    func number<T: BinaryInteger>(_ value: T) { text += "\(value)" }

    func string(_ value: String?) {
        guard let value else { return text += "null" }
        text += "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": text += "\\\""
            case "\\": text += "\\\\"
            case "\n": text += "\\n"
            case "\r": text += "\\r"
            case "\t": text += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                text += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: text.unicodeScalars.append(scalar)
            }
        }
        text += "\""
    }
}

/// What a client connection's record says besides what its driver counts: where it goes, and
/// which shapers were drawn for it. Made at accept, for services with an event log only.
struct RecordContext {
    let log: ConnectionEventLog
    let service: String
    let setup: ServiceSetup
    /// For each of `setup.shapers`, whether it applies to this connection.
    let applied: [Bool]

    /// The record of a connection to the setup's behaviour that ended with `end`; `started` and
    /// `startedAt` are its start by the wall clock and by the monotonic one.
    func record(peer: SocketAddress?, client: ConnectionRecord.Bytes, upstream: ConnectionRecord.Upstream?,
                started: Date, startedAt: NIODeadline, end: ConnectionEnd) -> ConnectionRecord {
        let elapsed = NIODeadline.now() - startedAt
        return ConnectionRecord(
            service: service, behaviour: setup.behaviour.plugin.name, version: setup.behaviour.plugin.versionLabel,
            peer: peer.map(ConnectionDriver.describe), shapers: shapers(), client: client, upstream: upstream,
            started: started, duration: .nanoseconds(elapsed.nanoseconds), end: end)
    }

    func shapers() -> [ConnectionRecord.Shaper] {
        zip(setup.shapers, applied).map { shaper, applied in
            ConnectionRecord.Shaper(name: shaper.name, shaper: shaper.instance.plugin.name,
                                    direction: shaper.direction.rawValue, applied: applied)
        }
    }
}
