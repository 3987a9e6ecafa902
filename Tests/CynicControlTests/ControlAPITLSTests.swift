import CynicTestSupport
import Foundation
import Testing

/// cynic with the API alone and a CA of the test's own.
private func cynicWithCA() throws -> (CynicWithAPI, TemporaryFolder) {
    let folder = TemporaryFolder("cynic-api-ca")
    return (try CynicWithAPI(environment: ["CYNIC_CA_DIR": folder.path + "/ca"]), folder)
}

@Suite("Control API: TLS services and the local CA")
struct ControlAPITLSTests {
    @Test("a service created over TLS answers a client trusting GET /tls's CA; PATCH tls null turns it back to plain TCP",
          .enabled(if: programExists("curl")))
    func createAndChange() throws {
        let (api, folder) = try cynicWithCA()
        let info = try api.call("GET", "/tls")
        #expect(info.status == 200, "\(info)")
        let ca = try #require(info.object["ca_certificate"] as? String)
        #expect(ca == folder.path + "/ca/ca.pem")
        #expect((info.object["ca_pem"] as? String)?.hasPrefix("-----BEGIN CERTIFICATE-----") == true)
        let profiles = (info.object["profiles"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
        #expect(profiles.contains("valid") && profiles.contains("expired"), "\(profiles)")
        let pem = try api.call("GET", "/tls/ca.pem")
        #expect(pem.body.hasPrefix("-----BEGIN CERTIFICATE-----"))

        let created = try api.call("POST", "/services", #"{"name": "secure", "behaviour": "http-json", "tls": "valid"}"#)
        #expect(created.status == 201, "\(created)")
        let tls = try #require(created.object["tls"] as? [String: Any])
        #expect(tls["profile"] as? String == "valid")
        #expect(tls["alpn"] as? [String] == [])
        let port = CynicWithAPI.port(of: created.object)
        let answer = try runProgram("curl", ["-sS", "--max-time", "10", "--cacert", ca, "https://localhost:\(port)/"])
        #expect(answer.status == 0, "\(answer.output)")
        #expect(answer.standardOutput.contains("Hello, World!"))

        let plain = try api.call("PATCH", "/services/secure", #"{"tls": null}"#)
        #expect(plain.status == 200, "\(plain)")
        #expect(plain.object["tls"] is NSNull)
        let overTCP = try runProgram("curl", ["-sS", "--max-time", "10", "http://127.0.0.1:\(port)/"])
        #expect(overTCP.standardOutput.contains("Hello, World!"), "\(overTCP.output)")
    }

    @Test("a bad tls field is refused naming it, and nothing is created", arguments: [
        (#"{"tls": 7}"#, "tls"),
        (#"{"tls": {"profile": "no-such-profile"}}"#, "tls.profile"),
        (#"{"tls": {"min_version": "1.4"}}"#, "tls.min_version"),
        (#"{"tls": {"alpn": ["h2", 3]}}"#, "tls.alpn[1]"),
        (#"{"tls": {"names": ["bad name"]}}"#, "tls.names[0]"),
        (#"{"tls": {"certificate": "/nonexistent/cert.pem", "key": "/nonexistent/key.pem"}}"#, "tls.certificate"),
        (#"{"tls": {"certificate": "/nonexistent/cert.pem"}}"#, "tls.key"),
        (#"{"tls": {"ciphers": "x"}}"#, "tls.ciphers"),
    ])
    func badTLS(fields: String, field: String) throws {
        let (api, _) = try cynicWithCA()
        let body = #"{"name": "s", "behaviour": "http-json", "#.dropLast(0) + fields.dropFirst()
        let answer = try api.call("POST", "/services", String(body))
        #expect(answer.status == 400, "\(answer)")
        #expect(answer.object["field"] as? String == field, "\(answer)")
        #expect(try api.call("GET", "/services").array.isEmpty)
    }
}
