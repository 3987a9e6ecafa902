@testable import CynicControl
import Hummingbird
import Testing

// Matching requests to routes, and the JSON fields of a body, without a socket.

@Suite("Routes and request bodies")
struct RouteTableTests {
    private var routes: RouteTable {
        var routes = RouteTable()
        routes.add(.get, "/services/:name") { _ in Response(status: .ok) }
        routes.add(.patch, "/services/:name") { _ in Response(status: .accepted) }
        routes.add(.get, "/services/:name/shapers/:shaper") { _ in Response(status: .ok) }
        return routes
    }

    @Test("a path's parameters are decoded")
    func parameters() throws {
        let (_, parameters) = try routes.match(.get, path: "/services/a%20b/shapers/lat%2Fency")
        #expect(parameters == ["name": "a b", "shaper": "lat/ency"])
    }

    @Test("a known path with another method is 405 with Allow; an unknown one 404")
    func refusals() {
        #expect(throws: APIError.self) { try routes.match(.delete, path: "/services/x") }
        do {
            _ = try routes.match(.delete, path: "/services/x")
        } catch {
            #expect(error.status == .methodNotAllowed)
            #expect(error.headers[.allow] == "GET, PATCH")
        }
        do {
            _ = try routes.match(.get, path: "/services")
        } catch {
            #expect(error.status == .notFound)
        }
    }

    @Test("a body's fields: wrong types, nulls and unknown fields are named")
    func fields() throws {
        let body = try JSONValue.parse(Array(#"{"name": 3, "enabled": null, "probability": 1.5, "seed": 18446744073709551615, "extra": 1}"#.utf8))
        let fields = try JSONFields(body)
        #expect(throws: APIError.self) { try fields.string("name") }
        #expect(throws: APIError.self) { try fields.bool("enabled") }
        #expect(throws: APIError.self) { try fields.probability("probability") }
        #expect(try fields.unsigned("seed") == .some(UInt64.max))
        do {
            try fields.allowOnly(["name", "enabled", "probability", "seed"])
        } catch {
            #expect(error.field == "extra")
        }
        #expect(throws: APIError.self) { try JSONValue.parse(Array("{".utf8)) }
        #expect(JSONValue.double(0.5).parameterText == "0.5")
        #expect(JSONValue.integer(200).parameterText == "200")
    }
}
