import CynicConfig
import CynicTestSupport
import CynicTLS
import Foundation
import Testing

/// What curl and Python's ssl module say of a profile: the words each profile's summary promises.
struct ClientOutcome: Sendable, CustomTestStringConvertible {
    let profile: String
    /// curl's exit status and a piece of its message; 0 and "hello" when it connects.
    let curl: (status: Int32, text: String)
    /// A piece of Python's exception, or "hello".
    let python: String
    /// What the profile's summary quotes of them.
    let quote: String?
    var testDescription: String { profile }
}

@Suite("Certificate profiles, as curl and Python see them", .enabled(if: programExists("curl") && programExists("python3")))
struct ClientTests {
    static let outcomes: [ClientOutcome] = [
        ClientOutcome(profile: "valid", curl: (0, "hello"), python: "hello", quote: nil),
        ClientOutcome(profile: "expired", curl: (60, "SSL certificate problem: certificate has expired"),
                      python: "certificate has expired", quote: "certificate has expired"),
        ClientOutcome(profile: "not-yet-valid", curl: (60, "SSL certificate problem: certificate is not yet valid"),
                      python: "certificate is not yet valid", quote: "certificate is not yet valid"),
        ClientOutcome(profile: "wrong-host",
                      curl: (60, "SSL: no alternative certificate subject name matches target host name 'localhost'"),
                      python: "Hostname mismatch, certificate is not valid for 'localhost'.", quote: "no alternative certificate subject name matches target host name"),
        ClientOutcome(profile: "self-signed", curl: (60, "SSL certificate problem: self-signed certificate"),
                      python: "self-signed certificate", quote: "self-signed certificate"),
        ClientOutcome(profile: "untrusted-root",
                      curl: (60, "SSL certificate problem: self-signed certificate in certificate chain"),
                      python: "self-signed certificate in certificate chain", quote: "self-signed certificate in certificate chain"),
        ClientOutcome(profile: "incomplete-chain", curl: (60, "SSL certificate problem: unable to get local issuer certificate"),
                      python: "unable to get local issuer certificate", quote: "unable to get local issuer certificate"),
        ClientOutcome(profile: "weak-key", curl: (60, "SSL certificate problem: EE certificate key too weak"),
                      python: "EE certificate key too weak", quote: "EE certificate key too weak"),
        ClientOutcome(profile: "sha1-signature", curl: (60, "SSL certificate problem: CA signature digest algorithm too weak"),
                      python: "CA signature digest algorithm too weak", quote: "CA signature digest algorithm too weak"),
        ClientOutcome(profile: "client-cert-required", curl: (56, "alert certificate required"),
                      python: "alert certificate required", quote: "alert certificate required"),
        ClientOutcome(profile: "tls1.0-only", curl: (35, "legacy sigalg disallowed or unsupported"),
                      python: "TLSV1_ALERT_PROTOCOL_VERSION", quote: "legacy sigalg disallowed or unsupported"),
        ClientOutcome(profile: "tls1.1-only", curl: (35, "legacy sigalg disallowed or unsupported"),
                      python: "TLSV1_ALERT_PROTOCOL_VERSION", quote: "legacy sigalg disallowed or unsupported"),
    ]

    @Test("curl (no flags but --cacert) and Python (a default context with the CA) say what the summary says",
          arguments: outcomes)
    func clients(_ outcome: ClientOutcome) throws {
        let server = try TLSTestServer(context: SharedCA.contexts.context(for: TLSSpec(profile: outcome.profile)))
        let ca = SharedCA.ca.certificatePath
        let curl = try runProgram("curl", ["-sS", "--http0.9", "--max-time", "10", "--cacert", ca,
                                           "https://localhost:\(server.port)/"])
        #expect(curl.status == outcome.curl.status, "\(curl.output)")
        #expect(curl.output.contains(outcome.curl.text), "\(curl.output)")
        let summary = CertificateProfile.named(outcome.profile)?.summary ?? ""
        let python = try runPython("""
            import socket, ssl, sys
            context = ssl.create_default_context(cafile=sys.argv[1])
            try:
                with socket.create_connection(("localhost", int(sys.argv[2])), timeout=10) as raw:
                    with context.wrap_socket(raw, server_hostname="localhost") as tls:
                        print(tls.recv(100).decode(), end="")
            except Exception as error:
                print(type(error).__name__, error)
            """, [ca, "\(server.port)"])
        #expect(python.output.contains(outcome.python), "\(python.output)")
        if let quote = outcome.quote {
            #expect(summary.contains(quote))
            #expect((curl.output + python.output).contains(quote))
        }
    }
}
