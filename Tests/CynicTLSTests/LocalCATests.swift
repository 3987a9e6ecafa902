import CynicConfig
import CynicTestSupport
import CynicTLS
import Foundation
import Testing

func fileMode(_ path: String) -> mode_t? {
    var status = stat()
    return lstat(path, &status) == 0 ? status.st_mode & 0o7777 : nil
}

/// `openssl verify -CAfile caFile [-untrusted rest] leaf`, each certificate written to `folder`.
func opensslVerify(caFile: String, chain: PresentedChain, in folder: TemporaryFolder,
                   _ extra: [String] = []) throws -> ProgramResult {
    let leaf = try folder.write("leaf.pem", chain.pemCertificates[0])
    var arguments = ["verify", "-CAfile", caFile] + extra
    if chain.certificates.count > 1 {
        arguments += ["-untrusted", try folder.write("rest.pem", chain.pemCertificates.dropFirst().joined())]
    }
    return try runProgram("openssl", arguments + [leaf])
}

@Suite("The local CA")
struct LocalCATests {
    @Test("minted at first use with its key 0600, the same certificate at the next load")
    func createsThenReuses() throws {
        let base = TemporaryFolder()
        let folder = base.file("nested/ca")
        let ca = try LocalCA.loadOrCreate(folder: folder)
        #expect(ca.folder == folder)
        #expect(ca.certificatePath == folder + "/ca.pem")
        #expect(fileMode(folder) == 0o700)
        #expect(fileMode(folder + "/ca-key.pem") == 0o600)
        #expect(fileMode(folder + "/ca.pem") == 0o644)
        #expect(try String(contentsOfFile: ca.certificatePath, encoding: .utf8) == ca.certificatePEM)
        let again = try LocalCA.loadOrCreate(folder: folder)
        #expect(again.certificatePEM == ca.certificatePEM)
        // No temporary folder is left beside it.
        #expect(try FileManager.default.contentsOfDirectory(atPath: base.file("nested")) == ["ca"])

        let text = try runProgram("openssl", ["x509", "-in", ca.certificatePath, "-noout", "-text"]).standardOutput
        #expect(text.contains("CA:TRUE"))
        #expect(text.contains("Certificate Sign, CRL Sign"))
        #expect(text.contains("cynic local CA ("))
        #expect(text.contains("ASN1 OID: prime256v1"))
    }

    @Test("by default it lives in the user's private folder, as ca/")
    func defaultFolder() throws {
        let folder = try LocalCA.defaultFolder()
        #expect(folder.hasSuffix("/cynic/ca") || folder == "/tmp/cynic-\(geteuid())/ca")
    }

    @Test("two processes' worth of concurrent first loads end with one CA")
    func concurrentCreation() async throws {
        let base = TemporaryFolder()
        let folder = base.file("ca")
        let loaded = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<4 {
                group.addTask { try await offThePool { try LocalCA.loadOrCreate(folder: folder).certificatePEM } }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(Set(loaded).count == 1)
        #expect(try String(contentsOfFile: folder + "/ca.pem", encoding: .utf8) == loaded[0])
        #expect(try FileManager.default.contentsOfDirectory(atPath: base.path) == ["ca"])
    }

    @Test("a user's own CA (openssl req -x509, P-256 and RSA) is used to sign the profiles")
    func usersOwnCA() throws {
        for algorithm in [["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"], ["-newkey", "rsa:2048"]] {
            let folder = TemporaryFolder()
            let made = try runProgram("openssl", ["req", "-x509"] + algorithm + [
                "-nodes", "-keyout", folder.file("ca-key.pem"), "-out", folder.file("ca.pem"),
                "-subj", "/CN=my own CA", "-days", "30"])
            try #require(made.status == 0, "\(made.output)")
            let mine = try String(contentsOfFile: folder.file("ca.pem"), encoding: .utf8)
            let ca = try LocalCA.loadOrCreate(folder: folder.path)
            #expect(ca.certificatePEM.filter { !$0.isWhitespace } == mine.filter { !$0.isWhitespace })
            let contexts = TLSContexts(ca: ca)
            let valid = try contexts.presentedChain(for: TLSSpec())
            #expect(try opensslVerify(caFile: ca.certificatePath, chain: valid, in: folder).status == 0)
            // With an RSA CA the SHA-1 leaf is signed by the CA itself: nothing else is sent.
            let sha1 = try contexts.presentedChain(for: TLSSpec(profile: "sha1-signature"))
            #expect(sha1.certificates.count == (algorithm[1] == "ec" ? 2 : 1))
        }
    }

    @Test("a broken CA file gives one line naming the file and what is wrong")
    func brokenFiles() throws {
        let folder = TemporaryFolder()
        let ca = try LocalCA.loadOrCreate(folder: folder.path)
        let goodKey = try String(contentsOfFile: folder.file("ca-key.pem"), encoding: .utf8)

        try folder.write("ca.pem", "hello\n")
        #expect { try LocalCA.loadOrCreate(folder: folder.path) } throws: {
            "\($0)" == "\(ca.certificatePath): not PEM (no \"-----BEGIN CERTIFICATE-----\" line)"
        }

        // Another CA's key beside this certificate.
        try folder.write("ca.pem", ca.certificatePEM)
        let other = TemporaryFolder()
        _ = try LocalCA.loadOrCreate(folder: other.path)
        try folder.write("ca-key.pem", try String(contentsOfFile: other.file("ca-key.pem"), encoding: .utf8))
        #expect { try LocalCA.loadOrCreate(folder: folder.path) } throws: {
            "\($0)" == "\(folder.file("ca-key.pem")): the key does not match the certificate in \(ca.certificatePath)"
        }
        try folder.write("ca-key.pem", goodKey)

        // A certificate without its key.
        let lonely = TemporaryFolder()
        try lonely.write("ca.pem", ca.certificatePEM)
        #expect { try LocalCA.loadOrCreate(folder: lonely.path) } throws: {
            "\($0)" == "\(lonely.file("ca-key.pem")): no such file"
        }
    }

    @Test("a certificate that is not a CA's is refused as such")
    func notACA() throws {
        let folder = TemporaryFolder()
        let made = try runProgram("openssl", [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", folder.file("ca-key.pem"), "-out", folder.file("ca.pem"), "-subj", "/CN=just a server",
            "-days", "30", "-addext", "basicConstraints=critical,CA:FALSE"])
        try #require(made.status == 0, "\(made.output)")
        #expect { try LocalCA.loadOrCreate(folder: folder.path) } throws: {
            "\($0)" == "\(folder.file("ca.pem")): not a CA certificate (its basic constraints do not say CA:TRUE)"
        }
    }

    @Test("the client certificate is the CA's, minted once, its key 0600")
    func clientCertificate() throws {
        let folder = TemporaryFolder()
        let ca = try LocalCA.loadOrCreate(folder: folder.path)
        let client = try ca.clientCertificate()
        #expect(client.certificatePath == folder.file("client.pem"))
        #expect(client.keyPath == folder.file("client-key.pem"))
        #expect(fileMode(client.keyPath) == 0o600)
        let first = try String(contentsOfFile: client.certificatePath, encoding: .utf8)
        _ = try ca.clientCertificate()
        _ = try LocalCA.loadOrCreate(folder: folder.path).clientCertificate()
        #expect(try String(contentsOfFile: client.certificatePath, encoding: .utf8) == first)
        let verified = try runProgram("openssl", ["verify", "-CAfile", ca.certificatePath, "-purpose", "sslclient",
                                                  client.certificatePath])
        #expect(verified.status == 0, "\(verified.output)")
        let subject = try runProgram("openssl", ["x509", "-in", client.certificatePath, "-noout", "-subject"])
        #expect(subject.standardOutput.contains("CN = cynic client"))
    }
}
