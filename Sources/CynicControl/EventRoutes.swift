import CynicRuntime
import Foundation
import Hummingbird
import NIOCore

/// The connection event log (one record per connection, as it ends) and the metrics.
struct EventRoutes: Sendable {
    let server: Server

    /// The longest a `wait` may hold a request.
    static let maxWaitSeconds = 60.0
    static let maxLimit = 10_000

    func register(in routes: inout RouteTable) {
        routes.add(.get, "/events") { request in
            let query = try EventQuery(request.query)
            guard let events = server.events else { return JSONResponse.make(EventsJSON(events: [], lastID: 0)) }
            let found: (records: [ConnectionRecord], lastID: UInt64)
            if let wait = query.wait {
                found = await events.wait(service: query.service, afterID: query.after, since: query.since, limit: query.limit,
                                          timeout: .milliseconds(Int64(wait * 1000)))
            } else {
                found = events.records(service: query.service, afterID: query.after, since: query.since, limit: query.limit)
            }
            return JSONResponse.make(EventsJSON(events: found.records, lastID: found.lastID))
        }
        routes.add(.get, "/events/stream") { request in
            let query = try EventQuery(request.query, streaming: true)
            guard let events = server.events else { throw APIError(.notFound, "this cynic keeps no event log") }
            let records = events.subscribe(service: query.service)
            let body = ResponseBody { writer in
                for await record in records {
                    // In the contract's key order, as the events file has it.
                    try await writer.write(ByteBuffer(string: record.jsonLine + "\n"))
                }
                try await writer.finish(nil)
            }
            return Response(status: .ok, headers: [.contentType: "application/x-ndjson", .cacheControl: "no-cache"], body: body)
        }
        routes.add(.get, "/metrics") { _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                     body: ResponseBody(byteBuffer: ByteBuffer(string: await server.metricsExposition())))
        }
    }
}

struct EventsJSON: Encodable {
    let events: [ConnectionRecord]
    let lastID: UInt64

    private enum CodingKeys: String, CodingKey {
        case events
        case lastID = "last_id"
    }
}

/// The filter of GET /events from its query: each value checked, each error naming it.
struct EventQuery {
    var service: String?
    var after: UInt64?
    var since: Date?
    var limit = 100
    var wait: Double?

    init(_ query: [String: String], streaming: Bool = false) throws(APIError) {
        let known = streaming ? ["service"] : ["service", "after", "since", "limit", "wait"]
        for key in query.keys.sorted() where !known.contains(key) {
            throw APIError.badRequest("\(key): unknown query parameter (known: \(known.joined(separator: ", ")))", field: key)
        }
        service = query["service"]
        if let text = query["after"] {
            guard let after = UInt64(text) else { throw APIError.badRequest("after: expected an event id (0 or more), got '\(text)'", field: "after") }
            self.after = after
        }
        if let text = query["since"] {
            guard let since = Self.date(text) else {
                throw APIError.badRequest("since: expected an RFC 3339 time such as 2026-12-01T12:00:00Z, got '\(text)'", field: "since")
            }
            self.since = since
        }
        if let text = query["limit"] {
            guard let limit = Int(text), (1...EventRoutes.maxLimit).contains(limit) else {
                throw APIError.badRequest("limit: expected a number from 1 to \(EventRoutes.maxLimit), got '\(text)'", field: "limit")
            }
            self.limit = limit
        }
        if let text = query["wait"] {
            guard let wait = Double(text), wait.isFinite, (0...EventRoutes.maxWaitSeconds).contains(wait) else {
                throw APIError.badRequest("wait: expected seconds from 0 to \(Int(EventRoutes.maxWaitSeconds)), got '\(text)'", field: "wait")
            }
            self.wait = wait
        }
    }

    static func date(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: text)
    }
}
