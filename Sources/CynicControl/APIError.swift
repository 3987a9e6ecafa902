import CynicRuntime
import Foundation
import Hummingbird

/// A request the API refuses: the status, and a JSON body with the message, the status again
/// (as toxiproxy's errors have it) and, when one field is at fault, its name.
struct APIError: Error, Sendable {
    let status: HTTPResponse.Status
    let message: String
    let field: String?
    /// Extra headers: `Allow` on a 405.
    var headers: HTTPFields = [:]

    init(_ status: HTTPResponse.Status, _ message: String, field: String? = nil) {
        self.status = status
        self.message = message
        self.field = field
    }

    static func badRequest(_ message: String, field: String? = nil) -> APIError {
        APIError(.badRequest, message, field: field)
    }

    static func notFound(_ message: String) -> APIError { APIError(.notFound, message) }

    init(_ error: ControlError) {
        switch error.kind {
        case .invalid: self.init(.badRequest, error.message, field: error.field)
        case .notFound: self.init(.notFound, error.message, field: error.field)
        case .conflict: self.init(.conflict, error.message, field: error.field)
        }
    }

    private struct Body: Encodable {
        let error: String
        let status: Int
        let field: String?
    }

    var response: Response {
        var response = JSONResponse.make(Body(error: message, status: Int(status.code), field: field), status: status)
        response.headers.append(contentsOf: headers)
        return response
    }
}

/// A call to the server, its refusal said as the API says it. `asField`: the prefix of the
/// service spec's field names that is the request body itself (a shaper's request names its own
/// `shaper`, not `shapers[2].shaper`).
func callServer<T: Sendable>(asField prefix: String? = nil, _ body: () async throws(ControlError) -> T) async throws(APIError) -> T {
    do {
        return try await body()
    } catch {
        var refusal = APIError(error)
        if let prefix, let field = refusal.field, field.hasPrefix(prefix) {
            refusal = APIError(refusal.status, refusal.message, field: String(field.dropFirst(prefix.count)))
        }
        throw refusal
    }
}

/// JSON answers, encoded one way everywhere: keys sorted, so the same state gives the same bytes.
enum JSONResponse {
    static func make(_ value: some Encodable, status: HTTPResponse.Status = .ok) -> Response {
        var body = ByteBuffer(bytes: encode(value))
        body.writeString("\n")
        return Response(status: status, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: body))
    }

    /// One value as JSON, on one line.
    static func encode(_ value: some Encodable) -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Every value the API encodes is plain data: encoding cannot fail.
        return (try? encoder.encode(value)) ?? Data("{}".utf8)
    }

    static func noContent() -> Response {
        Response(status: .noContent)
    }
}
