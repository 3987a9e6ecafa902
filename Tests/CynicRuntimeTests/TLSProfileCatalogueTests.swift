import CynicConfig
import CynicRuntime
import CynicTLS
import CynicTestSupport
import Foundation
import Testing

/// One row of docs/failures.md's "Certificate profiles": `http-json` over TLS with the profile,
/// and what each client trusting the local CA says.
struct TLSProfileRow: CustomStringConvertible, Sendable {
    var profile: String
    /// A row of its own for the profile with the client presenting `cynic tls client`'s
    /// certificate ("with the client certificate").
    var variant: String? = nil
    var curl: (exit: Int32, message: String)
    /// Python `requests.get(url, verify=CA)`: "200", or the exception's class and its reason.
    var requests: (outcome: String, reason: String)
    /// Python's `ssl`, a default context with the CA: "ok", or the exception's class and reason.
    var ssl: (outcome: String, reason: String)
    /// `openssl s_client -verify_return_error`: the line it says it in.
    var openssl: String

    var presentsClientCertificate: Bool { variant != nil }
    var description: String { variant.map { "\(profile) \($0)" } ?? profile }
    var documentKey: String { "`\(profile)`" + (variant.map { " \($0)" } ?? "") }
}

/// requests and ssl against URL, trusting CA, with the client certificate when CERT and KEY are
/// given: prints `requests: OUTCOME` and `ssl: OUTCOME`, an outcome being `200`/`ok` or
/// `ClassName: message`.
private let profileProbe = #"""
    import socket, ssl, sys, requests
    url, port, ca = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    cert = (sys.argv[4], sys.argv[5]) if len(sys.argv) > 5 else None
    try:
        print("requests:", requests.get(url, verify=ca, cert=cert, timeout=10).status_code)
    except Exception as error:
        print("requests:", type(error).__name__ + ":", error)
    try:
        context = ssl.create_default_context(cafile=ca)
        if cert:
            context.load_cert_chain(*cert)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with context.wrap_socket(raw, server_hostname="localhost") as tls:
                tls.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                assert tls.recv(100).startswith(b"HTTP/1.1 200")
        print("ssl: ok")
    except Exception as error:
        print("ssl:", type(error).__name__ + ":", error)
    """#

@Suite("The failure catalogue: certificate profiles, as clients trusting the local CA see them")
struct TLSProfileCatalogueTests {
    static let verifyFailed = "SSLCertVerificationError"

    /// A profile whose certificate a verifying client refuses, as each says it.
    static func refused(_ profile: String, curl: String, python: String, num: Int, openssl: String? = nil) -> TLSProfileRow {
        TLSProfileRow(profile: profile, curl: (60, curl), requests: ("SSLError", python), ssl: (verifyFailed, python),
                      openssl: "verify error:num=\(num):\(openssl ?? python)")
    }

    static let rows: [TLSProfileRow] = [
        TLSProfileRow(profile: "valid", curl: (0, ""), requests: ("200", ""), ssl: ("ok", ""), openssl: "Verify return code: 0 (ok)"),
        refused("expired", curl: "SSL certificate problem: certificate has expired", python: "certificate has expired", num: 10),
        refused("not-yet-valid", curl: "SSL certificate problem: certificate is not yet valid",
                python: "certificate is not yet valid", num: 9),
        refused("wrong-host", curl: "SSL: no alternative certificate subject name matches target host name 'localhost'",
                python: "Hostname mismatch, certificate is not valid for 'localhost'.", num: 62, openssl: "hostname mismatch"),
        refused("self-signed", curl: "SSL certificate problem: self-signed certificate", python: "self-signed certificate", num: 18),
        refused("untrusted-root", curl: "SSL certificate problem: self-signed certificate in certificate chain",
                python: "self-signed certificate in certificate chain", num: 19),
        refused("incomplete-chain", curl: "SSL certificate problem: unable to get local issuer certificate",
                python: "unable to get local issuer certificate", num: 20),
        refused("weak-key", curl: "SSL certificate problem: EE certificate key too weak", python: "EE certificate key too weak", num: 66),
        refused("sha1-signature", curl: "SSL certificate problem: CA signature digest algorithm too weak",
                python: "CA signature digest algorithm too weak", num: 68),
        TLSProfileRow(profile: "client-cert-required", curl: (56, "tlsv13 alert certificate required"),
                      requests: ("SSLError", "tlsv13 alert certificate required"),
                      ssl: ("SSLError", "tlsv13 alert certificate required"), openssl: "tlsv13 alert certificate required"),
        TLSProfileRow(profile: "client-cert-required", variant: "with the client certificate", curl: (0, ""),
                      requests: ("200", ""), ssl: ("ok", ""), openssl: "Verify return code: 0 (ok)"),
        TLSProfileRow(profile: "tls1.0-only", curl: (35, "legacy sigalg disallowed or unsupported"),
                      requests: ("SSLError", "tlsv1 alert protocol version"), ssl: ("SSLError", "tlsv1 alert protocol version"),
                      openssl: "legacy sigalg disallowed or unsupported"),
        TLSProfileRow(profile: "tls1.1-only", curl: (35, "legacy sigalg disallowed or unsupported"),
                      requests: ("SSLError", "tlsv1 alert protocol version"), ssl: ("SSLError", "tlsv1 alert protocol version"),
                      openssl: "legacy sigalg disallowed or unsupported"),
    ]

    /// The rows of the page's "Certificate profiles" table, by their first cell.
    static func documentRows() -> [String: String] {
        let lines = CatalogueTests.document.split(separator: "\n").map(String.init)
        guard let start = lines.firstIndex(of: "### Certificate profiles") else { return [:] }
        var rows: [String: String] = [:]
        for line in lines[(start + 1)...] {
            if line.hasPrefix("#") { break }
            guard line.hasPrefix("| `") else { continue }
            let first = line.split(separator: "|")[0].trimmingCharacters(in: .whitespaces)
            rows[first] = line
        }
        return rows
    }

    @Test("every profile has a row, and every row is a profile")
    func complete() {
        let documented = Set(Self.documentRows().keys.map { $0.split(separator: "`")[0] }.map(String.init))
        #expect(documented == Set(CertificateProfile.all.map(\.name)))
        #expect(Set(Self.rows.map(\.profile)) == Set(CertificateProfile.all.map(\.name)))
        #expect(Set(Self.documentRows().keys) == Set(Self.rows.map(\.documentKey)))
    }

    @Test("what the page says is what curl, requests, ssl and openssl s_client see", .enabled(if: programExists("curl")),
          arguments: rows)
    func row(_ row: TLSProfileRow) async throws {
        let line = try #require(Self.documentRows()[row.documentKey], "no row for \(row) in docs/failures.md")
        // The page says it...
        let cells = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
        let (curlCell, requestsCell, sslCell, opensslCell) = (cells[cells.count - 4], cells[cells.count - 3],
                                                              cells[cells.count - 2], cells[cells.count - 1])
        #expect(curlCell.hasPrefix("exit \(row.curl.exit)"), "\(row): curl cell '\(curlCell)'")
        if !row.curl.message.isEmpty { #expect(curlCell.contains("`\(row.curl.message)`"), "\(row): '\(curlCell)'") }
        for (cell, expected) in [(requestsCell, row.requests), (sslCell, row.ssl)] {
            #expect(cell.hasPrefix("`\(expected.outcome)`"), "\(row): '\(cell)'")
            if !expected.reason.isEmpty { #expect(cell.contains("`\(expected.reason)`"), "\(row): '\(cell)'") }
        }
        #expect(opensslCell.contains("`\(row.openssl)`"), "\(row): openssl cell '\(opensslCell)'")

        // ...and the clients see it.
        let service = try await TestServices.start("http-json", tls: TLSSpec(profile: row.profile))
        defer { Task { await service.stop() } }
        let ca = try TestServices.caCertificate
        let client = row.presentsClientCertificate ? try TestServices.tls.contexts().ca.clientCertificate() : nil
        let clientArguments = client.map { [$0.certificatePath, $0.keyPath] } ?? []
        let url = "https://localhost:\(service.port)/"
        let curl = try await offThePool {
            try runProgram("curl", ["-sS", "--max-time", "10", "-o", "/dev/null", "--cacert", ca]
                           + (client.map { ["--cert", $0.certificatePath, "--key", $0.keyPath] } ?? []) + [url], timeout: 30)
        }
        #expect(curl.status == row.curl.exit, "\(row): curl \(curl.standardError)")
        if !row.curl.message.isEmpty { #expect(curl.standardError.contains(row.curl.message), "\(row): \(curl.standardError)") }

        let python = try await offThePool { try runPython(profileProbe, [url, "\(service.port)", ca] + clientArguments, timeout: 60) }
        for (label, expected) in [("requests", row.requests), ("ssl", row.ssl)] {
            let said = python.standardOutput.split(separator: "\n").first { $0.hasPrefix("\(label): ") }.map(String.init) ?? python.output
            #expect(said.hasPrefix("\(label): \(expected.outcome)"), "\(row): \(said)")
            if !expected.reason.isEmpty { #expect(said.contains(expected.reason), "\(row): \(said)") }
        }

        // A request, and -ign_eof to read until the server is done: under TLS 1.3 a refusal of
        // the client (no certificate) comes after the handshake, and must not be missed.
        let openssl = try await offThePool {
            try runProgram("openssl", ["s_client", "-connect", "127.0.0.1:\(service.port)", "-servername", "localhost",
                                       "-CAfile", ca, "-verify_return_error", "-verify_hostname", "localhost", "-ign_eof"]
                           + (client.map { ["-cert", $0.certificatePath, "-key", $0.keyPath] } ?? []),
                           input: "GET / HTTP/1.0\r\n\r\n", timeout: 30)
        }
        #expect(openssl.output.contains(row.openssl), "\(row): \(openssl.output.suffix(600))")
    }
}
