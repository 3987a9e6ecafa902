import CynicRuntime
import CynicTLS
import Hummingbird

/// The local CA a test trusts, the client certificate for mTLS, and the certificate profiles.
struct TLSRoutes: Sendable {
    let server: Server

    func register(in routes: inout RouteTable) {
        routes.add(.get, "/tls") { _ in
            let ca = try authority()
            let client = try? ca.clientCertificate()
            return JSONResponse.make(TLSInfoJSON(
                caCertificate: ca.certificatePath, caPEM: ca.certificatePEM,
                clientCertificate: client?.certificatePath, clientKey: client?.keyPath,
                profiles: CertificateProfile.all.map { .init(name: $0.name, summary: $0.summary) }))
        }
        routes.add(.get, "/tls/ca.pem") { _ in
            Response(status: .ok, headers: [.contentType: "application/x-pem-file"],
                     body: ResponseBody(byteBuffer: ByteBuffer(string: try authority().certificatePEM)))
        }
    }

    private func authority() throws(APIError) -> LocalCA {
        do {
            return try server.tls.contexts().ca
        } catch {
            throw APIError(.internalServerError, "no local CA: \(error)")
        }
    }
}

struct TLSInfoJSON: Encodable {
    struct Profile: Encodable {
        let name: String
        let summary: String
    }

    let caCertificate: String
    let caPEM: String
    let clientCertificate: String?
    let clientKey: String?
    let profiles: [Profile]

    private enum CodingKeys: String, CodingKey {
        case caCertificate = "ca_certificate", caPEM = "ca_pem", clientCertificate = "client_certificate",
             clientKey = "client_key", profiles
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(caCertificate, forKey: .caCertificate)
        try container.encode(caPEM, forKey: .caPEM)
        try container.encode(clientCertificate, forKey: .clientCertificate)
        try container.encode(clientKey, forKey: .clientKey)
        try container.encode(profiles, forKey: .profiles)
    }
}
