import CynicConfig
import CynicTestSupport
import CynicTLS
import Foundation
import Testing

/// One CA for the profile tests, in a folder of its own: minting it is the first test's cost.
enum SharedCA {
    static let folder = TemporaryFolder("cynic-tls-ca")
    static let ca: LocalCA = {
        do { return try LocalCA.loadOrCreate(folder: folder.path) } catch { fatalError("\(error)") }
    }()
    static let contexts = TLSContexts(ca: ca)
}

/// What OpenSSL 3.0 says of a profile: its verify error (nil: it passes).
struct VerifyOutcome: Sendable, CustomTestStringConvertible {
    let profile: String
    let error: (number: Int, text: String)?
    var testDescription: String { profile }

    init(_ profile: String, _ number: Int? = nil, _ text: String = "") {
        self.profile = profile
        self.error = number.map { ($0, text) }
    }
}

@Suite("Certificate profiles, as OpenSSL sees them")
struct ProfileTests {
    static let certificateOutcomes: [VerifyOutcome] = [
        VerifyOutcome("valid"),
        VerifyOutcome("expired", 10, "certificate has expired"),
        VerifyOutcome("not-yet-valid", 9, "certificate is not yet valid"),
        VerifyOutcome("wrong-host", 62, "hostname mismatch"),
        VerifyOutcome("self-signed", 18, "self-signed certificate"),
        VerifyOutcome("untrusted-root", 19, "self-signed certificate in certificate chain"),
        VerifyOutcome("incomplete-chain", 20, "unable to get local issuer certificate"),
        VerifyOutcome("weak-key", 66, "EE certificate key too weak"),
        VerifyOutcome("sha1-signature", 68, "CA signature digest algorithm too weak"),
    ]

    @Test("each profile is listed once, in order, with a summary")
    func listed() {
        let names = CertificateProfile.all.map(\.name)
        #expect(names == ["valid", "expired", "not-yet-valid", "wrong-host", "self-signed", "untrusted-root",
                          "incomplete-chain", "weak-key", "sha1-signature", "client-cert-required",
                          "tls1.0-only", "tls1.1-only"])
        #expect(CertificateProfile.all.allSatisfy { !$0.summary.isEmpty && !$0.summary.contains("\n") })
        #expect(CertificateProfile.named("weak-key")?.recipe.leafKey == .rsa(bits: 1024))
        #expect(CertificateProfile.named("nope") == nil)
    }

    @Test("a handshake with openssl s_client fails with the profile's verify error", arguments: certificateOutcomes)
    func handshake(_ outcome: VerifyOutcome) throws {
        let server = try TLSTestServer(context: SharedCA.contexts.context(for: TLSSpec(profile: outcome.profile)))
        let result = try server.sClient(caFile: SharedCA.ca.certificatePath)
        if let error = outcome.error {
            #expect(result.status != 0)
            #expect(result.output.contains("verify error:num=\(error.number):\(error.text)"), "\(result.output)")
            #expect(!result.output.contains("hello"))
        } else {
            #expect(result.status == 0, "\(result.output)")
            #expect(result.output.contains("Verification: OK"), "\(result.output)")
            #expect(result.output.contains("hello"), "\(result.output)")
        }
    }

    @Test("openssl verify of the chain presented (leaf, the rest untrusted) says the same", arguments: certificateOutcomes)
    func verify(_ outcome: VerifyOutcome) throws {
        let folder = TemporaryFolder()
        let chain = try SharedCA.contexts.presentedChain(for: TLSSpec(profile: outcome.profile))
        // The security level curl and s_client use on Debian; verify's own default checks no strength.
        let result = try opensslVerify(caFile: SharedCA.ca.certificatePath, chain: chain, in: folder,
                                       ["-auth_level", "2", "-verify_hostname", "localhost"])
        if let error = outcome.error {
            #expect(result.status != 0)
            #expect(result.output.contains("error \(error.number) at"), "\(result.output)")
            #expect(result.output.contains(error.text), "\(result.output)")
        } else {
            #expect(result.status == 0, "\(result.output)")
        }
    }

    @Test("valid fails without the local CA: unable to get local issuer certificate (num=20)")
    func validNeedsTheCA() throws {
        let other = TemporaryFolder()
        let otherCA = try LocalCA.loadOrCreate(folder: other.path)
        let server = try TLSTestServer(context: SharedCA.contexts.context(for: TLSSpec()))
        let result = try server.sClient(caFile: otherCA.certificatePath)
        #expect(result.status != 0)
        #expect(result.output.contains("verify error:num=20:unable to get local issuer certificate"), "\(result.output)")
    }

    @Test("the chains have the extensions real servers have, for the names asked")
    func leafExtensions() throws {
        let folder = TemporaryFolder()
        let chain = try SharedCA.contexts.presentedChain(for: TLSSpec(names: ["api.test", "10.1.2.3"]))
        let leaf = try folder.write("leaf.pem", chain.pemCertificates[0])
        let text = try runProgram("openssl", ["x509", "-in", leaf, "-noout", "-text"]).standardOutput
        for expected in ["CA:FALSE", "Digital Signature", "TLS Web Server Authentication",
                         "DNS:api.test, IP Address:10.1.2.3", "Subject Key Identifier", "Authority Key Identifier",
                         "Subject: O = cynic, CN = api.test"] {
            #expect(text.contains(expected), "\(expected) in \(text)")
        }
        let valid = try SharedCA.contexts.presentedChain(for: TLSSpec())
        let sans = try valid.leaf.extensions.subjectAlternativeNames.map { "\($0)" } ?? ""
        #expect(sans.contains("localhost"))
        // Serial numbers are random: two chains minted for other names differ.
        #expect(chain.leaf.serialNumber != valid.leaf.serialNumber)
        // The leaf is valid from an hour ago for 30 days.
        let window = valid.leaf.notValidAfter.timeIntervalSince(valid.leaf.notValidBefore)
        #expect(abs(window - (30 * 86_400 + 3600)) < 5)
    }

    @Test("client-cert-required: s_client fails without a client certificate, passes with LocalCA.clientCertificate()")
    func mutualTLS() throws {
        let server = try TLSTestServer(context: SharedCA.contexts.context(for: TLSSpec(profile: "client-cert-required")))
        let without = try server.sClient(caFile: SharedCA.ca.certificatePath)
        #expect(!without.output.contains("hello"), "\(without.output)")
        #expect(without.output.contains("alert certificate required"), "\(without.output)")
        let client = try SharedCA.ca.clientCertificate()
        let with = try server.sClient(caFile: SharedCA.ca.certificatePath,
                                      ["-cert", client.certificatePath, "-key", client.keyPath])
        #expect(with.status == 0, "\(with.output)")
        #expect(with.output.contains("hello"), "\(with.output)")
        // Over TLS 1.2 the refusal comes during the handshake.
        let old = try server.sClient(caFile: SharedCA.ca.certificatePath, ["-tls1_2"])
        #expect(old.status != 0)
        #expect(old.output.contains("alert handshake failure"), "\(old.output)")
    }

    @Test("tls1.0-only and tls1.1-only: modern clients refuse; an old-protocol client connects",
          arguments: [("tls1.0-only", "-tls1", "TLSv1"), ("tls1.1-only", "-tls1_1", "TLSv1.1")])
    func oldVersions(_ profile: String, _ flag: String, _ version: String) throws {
        let server = try TLSTestServer(context: SharedCA.contexts.context(for: TLSSpec(profile: profile)))
        let ca = SharedCA.ca.certificatePath
        // The server answers a TLS 1.2 ClientHello with its own version, which the client refuses.
        let modern = try server.sClient(caFile: ca, ["-tls1_2"])
        #expect(modern.status != 0)
        #expect(modern.output.contains("unsupported protocol"), "\(modern.output)")
        // OpenSSL 3.0's default security level refuses the SHA-1 handshake signature of TLS < 1.2.
        let defaults = try server.sClient(caFile: ca, [flag])
        #expect(defaults.status != 0)
        #expect(defaults.output.contains("legacy sigalg disallowed or unsupported"), "\(defaults.output)")
        let old = try server.sClient(caFile: ca, [flag, "-cipher", "DEFAULT@SECLEVEL=0"])
        #expect(old.status == 0, "\(old.output)")
        #expect(old.output.contains("Protocol version: \(version)\n"), "\(old.output)")
        #expect(old.output.contains("hello"), "\(old.output)")
    }
}
