import Foundation
import Hummingbird
import NIOCore

/// A request as a route's handler sees it: the path's parameters decoded, the query, and the
/// body already read (bounded).
struct APIRequest: Sendable {
    let method: HTTPRequest.Method
    let parameters: [String: String]
    let query: [String: String]
    let body: [UInt8]

    func parameter(_ name: String) -> String { parameters[name] ?? "" }

    /// The body as JSON.
    func json() throws(APIError) -> JSONValue { try JSONValue.parse(body) }
}

/// The API's routes, matched by method and path segments: a known path asked with another
/// method is answered 405 with `Allow`, an unknown one 404.
struct RouteTable: Sendable {
    typealias Handler = @Sendable (APIRequest) async throws -> Response

    private struct Route: Sendable {
        let method: HTTPRequest.Method
        /// Literal segments, and ":name" for a parameter.
        let segments: [String]
        let handler: Handler
    }

    private var routes: [Route] = []

    mutating func add(_ method: HTTPRequest.Method, _ path: String, _ handler: @escaping Handler) {
        routes.append(Route(method: method, segments: path.split(separator: "/").map(String.init), handler: handler))
    }

    /// The route for `method` and `path`, with its parameters; or the error to answer.
    func match(_ method: HTTPRequest.Method, path: String) throws(APIError) -> (Handler, [String: String]) {
        let segments = path.split(separator: "/", omittingEmptySubsequences: true).map { segment in
            String(segment).removingPercentEncoding ?? String(segment)
        }
        var allowed: [HTTPRequest.Method] = []
        for route in routes {
            guard let parameters = Self.parameters(of: route.segments, in: segments) else { continue }
            if route.method == method { return (route.handler, parameters) }
            allowed.append(route.method)
        }
        guard !allowed.isEmpty else { throw APIError.notFound("no such resource: \(path) (the API is described at /openapi.yaml)") }
        var error = APIError(.methodNotAllowed, "\(method.rawValue) is not allowed on \(path) (allowed: \(allowed.map(\.rawValue).joined(separator: ", ")))")
        error.headers[.allow] = allowed.map(\.rawValue).joined(separator: ", ")
        throw error
    }

    private static func parameters(of pattern: [String], in segments: [String]) -> [String: String]? {
        guard pattern.count == segments.count else { return nil }
        var parameters: [String: String] = [:]
        for (expected, given) in zip(pattern, segments) {
            if expected.hasPrefix(":") {
                parameters[String(expected.dropFirst())] = given
            } else if expected != given {
                return nil
            }
        }
        return parameters
    }
}
