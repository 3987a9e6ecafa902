import CynicTestSupport
import Foundation
import Testing

@Suite("cynic tls, and --tls on cynic serve")
struct TLSCommandTests {
    @Test("cynic tls ca makes the CA at first use and prints its path; --pem the certificate; client prints a signed pair")
    func caAndClient() throws {
        let folder = TemporaryFolder("cynic-cli-ca")
        let environment = ["CYNIC_CA_DIR": folder.path + "/ca"]
        let ca = try runProgram(Paths.cynic, ["tls", "ca"], environment: environment)
        #expect(ca.status == 0, "\(ca.output)")
        #expect(ca.standardOutput == folder.path + "/ca/ca.pem\n")
        let again = try runProgram(Paths.cynic, ["tls", "ca", "--pem"], environment: environment)
        let written = try String(contentsOfFile: folder.path + "/ca/ca.pem", encoding: .utf8)
        #expect(again.standardOutput == written, "the same CA, reused")
        // --ca-dir wins over the environment.
        let other = TemporaryFolder("cynic-cli-ca-other")
        let flagged = try runProgram(Paths.cynic, ["tls", "ca", "--ca-dir", other.path], environment: environment)
        #expect(flagged.standardOutput == other.path + "/ca.pem\n")

        let client = try runProgram(Paths.cynic, ["tls", "client"], environment: environment)
        let paths = client.standardOutput.split(separator: "\n").map(String.init)
        try #require(paths.count == 2, "\(client.output)")
        let verified = try runProgram("openssl", ["verify", "-CAfile", folder.path + "/ca/ca.pem", paths[0]])
        #expect(verified.standardOutput.contains(": OK"), "\(verified.output)")
    }

    @Test("cynic tls profiles lists every profile with its summary")
    func profiles() throws {
        let listed = try runProgram(Paths.cynic, ["tls", "profiles"])
        let names = listed.standardOutput.split(separator: "\n").compactMap { $0.split(separator: " ").first.map(String.init) }
        #expect(names == ["valid", "expired", "not-yet-valid", "wrong-host", "self-signed", "untrusted-root", "incomplete-chain",
                          "weak-key", "sha1-signature", "client-cert-required", "tls1.0-only", "tls1.1-only"])
    }

    @Test("a bad --tls is one line naming what is wrong, and cynic serve exits non-zero", arguments: [
        (["--tls", "expird"], "tls.profile: no profile 'expird'"),
        (["--tls-cert", "/nonexistent.pem"], "--tls-cert needs --tls-key"),
        (["--tls-min-version", "1.3", "--tls-max-version", "1.2"], "--tls-min-version 1.3 is above --tls-max-version 1.2"),
        (["--tls-name", "bad name"], "--tls-name: expected a DNS name or an IP address, got 'bad name'"),
        (["--tls-min-version", "2.0"], "--tls-min-version"),
    ])
    func badOptions(arguments: [String], message: String) throws {
        let folder = TemporaryFolder("cynic-cli-ca")
        let result = try runProgram(Paths.cynic, ["serve", "http-json", "--port", "0"] + arguments,
                                    environment: ["CYNIC_CA_DIR": folder.path + "/ca"], timeout: 30)
        #expect(result.status != 0)
        #expect(result.standardError.contains(message), "\(result.output)")
        // ArgumentParser's own refusals add its help and usage lines after the one that says it.
        let lines = result.standardError.split(separator: "\n").filter {
            !$0.hasPrefix("Usage:") && !$0.hasPrefix("Help:") && !$0.contains("See 'cynic")
        }
        #expect(lines.count == 1, "\(result.standardError)")
    }
}
