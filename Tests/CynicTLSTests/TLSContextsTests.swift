import CynicConfig
import CynicTestSupport
import CynicTLS
import Foundation
import NIOSSL
import Testing

@Suite("Server contexts from a TLSSpec")
struct TLSContextsTests {
    @Test("one context per spec, built once: the same object at the next call")
    func cached() throws {
        let contexts = SharedCA.contexts
        let first = try contexts.context(for: TLSSpec(profile: "expired"))
        #expect(try contexts.context(for: TLSSpec(profile: "expired")) === first)
        #expect(try contexts.context(for: TLSSpec(profile: "expired", alpn: ["h2"])) !== first)
        // Other ALPN, same chain.
        #expect(try contexts.presentedChain(for: TLSSpec(profile: "expired", alpn: ["h2"])).leaf
                == contexts.presentedChain(for: TLSSpec(profile: "expired")).leaf)
    }

    @Test("a spec is checked without minting: profile, names, files in pairs")
    func check() throws {
        try TLSContexts.check(TLSSpec(profile: "weak-key"))
        #expect { try TLSContexts.check(TLSSpec(profile: "nope")) } throws: { ($0 as? TLSError)?.field == "tls.profile" }
        #expect { try TLSContexts.check(TLSSpec(names: [])) } throws: {
            "\($0)" == "tls.names: a leaf needs at least one name, and no empty one"
        }
        #expect { try TLSContexts.check(TLSSpec(keyFile: "/k.pem")) } throws: {
            "\($0)" == "tls.certificate: tls.key is given without the certificate"
        }
        // The user's files are read when the context is built, not by check.
        try TLSContexts.check(TLSSpec(certificateFile: "/nonexistent.pem", keyFile: "/nonexistent-key.pem"))
    }

    @Test("an unknown profile is named, with the list of profiles")
    func unknownProfile() {
        #expect { try SharedCA.contexts.context(for: TLSSpec(profile: "expird")) } throws: { error in
            let error = error as? TLSError
            return error?.field == "tls.profile" && "\(error!)" == "tls.profile: no profile 'expird'; the profiles are "
                + "valid, expired, not-yet-valid, wrong-host, self-signed, untrusted-root, incomplete-chain, "
                + "weak-key, sha1-signature, client-cert-required, tls1.0-only, tls1.1-only"
        }
    }

    @Test("versions: min above max is refused, naming the field; the spec's bounds override the profile's")
    func versions() throws {
        #expect { try SharedCA.contexts.context(for: TLSSpec(minimumVersion: .tls1_3, maximumVersion: .tls1_2)) } throws: {
            "\($0)" == "tls.min_version: the lowest version, 1.3, is above the highest, 1.2"
        }
        #expect { try SharedCA.contexts.context(for: TLSSpec(profile: "tls1.0-only", minimumVersion: .tls1_2)) } throws: {
            "\($0)" == "tls.min_version: the lowest version, 1.2, is above the highest, 1.0 (the tls1.0-only profile's)"
        }
        #expect { try TLSContexts.check(TLSSpec(profile: "tls1.1-only", maximumVersion: .tls1_0)) } throws: {
            "\($0)" == "tls.max_version: the lowest version, 1.1, is above the highest, 1.0 (the tls1.1-only profile's)"
        }
        try TLSContexts.check(TLSSpec(profile: "tls1.1-only", minimumVersion: .tls1_0))
        // valid speaks 1.2 and 1.3 by default; asked for 1.3 only, 1.2 is refused.
        let server = try TLSTestServer(context: SharedCA.contexts.context(for: TLSSpec(minimumVersion: .tls1_3)))
        #expect(try server.sClient(caFile: SharedCA.ca.certificatePath, ["-tls1_2"]).status != 0)
        #expect(try server.sClient(caFile: SharedCA.ca.certificatePath, ["-tls1_3"]).status == 0)
        let modern = try TLSTestServer(context: SharedCA.contexts.context(for: TLSSpec()))
        let old = try modern.sClient(caFile: SharedCA.ca.certificatePath, ["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"])
        #expect(old.status != 0)
        #expect(old.output.contains("alert protocol version"), "\(old.output)")
    }

    @Test("ALPN: the spec's protocols are offered")
    func alpn() throws {
        let server = try TLSTestServer(context: SharedCA.contexts.context(for: TLSSpec(alpn: ["h2", "http/1.1"])))
        let result = try server.sClient(caFile: SharedCA.ca.certificatePath, ["-alpn", "http/1.1"], brief: false)
        #expect(result.output.contains("ALPN protocol: http/1.1"), "\(result.output)")
    }

    @Test("the user's own certificate and key files are presented, chain and all")
    func usersFiles() throws {
        let folder = TemporaryFolder()
        // A certificate the user made themselves, with openssl, signed by the shared CA.
        let made = try runProgram("openssl", [
            "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", folder.file("key.pem"),
            "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost", "-out", folder.file("req.pem")])
        try #require(made.status == 0, "\(made.output)")
        let signed = try runProgram("openssl", [
            "x509", "-req", "-in", folder.file("req.pem"), "-CA", SharedCA.ca.certificatePath,
            "-CAkey", SharedCA.folder.file("ca-key.pem"), "-days", "2", "-copy_extensions", "copy",
            "-out", folder.file("cert.pem")])
        try #require(signed.status == 0, "\(signed.output)")
        let spec = TLSSpec(certificateFile: folder.file("cert.pem"), keyFile: folder.file("key.pem"))
        let server = try TLSTestServer(context: SharedCA.contexts.context(for: spec))
        let result = try server.sClient(caFile: SharedCA.ca.certificatePath)
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("hello"))
    }

    @Test("the user's files: a missing one and a key for another certificate are named")
    func usersBrokenFiles() throws {
        let folder = TemporaryFolder()
        let chain = try SharedCA.contexts.presentedChain(for: TLSSpec())
        let certificate = try folder.write("cert.pem", chain.pem)
        let otherKey = try runProgram("openssl", ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                                                  "-out", folder.file("other-key.pem")])
        try #require(otherKey.status == 0)
        #expect { try SharedCA.contexts.context(for: TLSSpec(certificateFile: folder.file("missing.pem"),
                                                             keyFile: folder.file("other-key.pem"))) } throws: {
            "\($0)" == "tls.certificate: \(folder.file("missing.pem")): no such file"
        }
        #expect { try SharedCA.contexts.context(for: TLSSpec(certificateFile: certificate,
                                                             keyFile: folder.file("missing-key.pem"))) } throws: {
            "\($0)" == "tls.key: \(folder.file("missing-key.pem")): no such file"
        }
        #expect { try SharedCA.contexts.context(for: TLSSpec(certificateFile: certificate,
                                                             keyFile: folder.file("other-key.pem"))) } throws: {
            "\($0)" == "tls.key: \(folder.file("other-key.pem")): the key does not match the first certificate in "
                + "\(certificate) (the leaf comes first)"
        }
        #expect { try SharedCA.contexts.context(for: TLSSpec(certificateFile: certificate)) } throws: {
            "\($0)" == "tls.key: tls.certificate is given without its key"
        }
        try folder.write("junk.pem", "not a certificate")
        #expect { try SharedCA.contexts.context(for: TLSSpec(certificateFile: folder.file("junk.pem"),
                                                             keyFile: folder.file("other-key.pem"))) } throws: {
            "\($0)" == "tls.certificate: \(folder.file("junk.pem")): not PEM (no \"-----BEGIN CERTIFICATE-----\" line)"
        }
    }

    @Test("minting each profile: the figures (median of 5, a fresh TLSContexts each time)")
    func mintingTimes() throws {
        var lines: [String] = []
        let clock = ContinuousClock()
        let caFolder = TemporaryFolder()
        let caTimes = try (0..<5).map { index in
            try clock.measure { _ = try LocalCA.loadOrCreate(folder: caFolder.file("ca\(index)")) }
        }
        lines.append("CA creation: \(median(caTimes))")
        let load = try (0..<5).map { _ in try clock.measure { _ = try LocalCA.loadOrCreate(folder: caFolder.file("ca0")) } }
        lines.append("CA load: \(median(load))")
        for profile in CertificateProfile.all {
            let times = try (0..<5).map { _ in
                let contexts = TLSContexts(ca: SharedCA.ca)
                return try clock.measure { _ = try contexts.context(for: TLSSpec(profile: profile.name)) }
            }
            lines.append("\(profile.name): \(median(times))")
        }
        let contexts = TLSContexts(ca: SharedCA.ca)
        _ = try contexts.context(for: TLSSpec())
        let cachedTimes = try (0..<5).map { _ in try clock.measure { _ = try contexts.context(for: TLSSpec()) } }
        lines.append("valid, cached: \(median(cachedTimes))")
        print("minting times:\n  " + lines.joined(separator: "\n  "))
    }
}

private func median(_ durations: [Duration]) -> String {
    let sorted = durations.sorted()
    let seconds = sorted[sorted.count / 2] / .milliseconds(1)
    return String(format: "%.2f ms", seconds)
}
