import ArgumentParser
import CynicTLS

/// `cynic tls`: the local CA a test trusts, the client certificate for mTLS, and the profiles.
struct TLSCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tls",
        abstract: "The local CA, its client certificate and the certificate profiles of TLS services.",
        discussion: """
            A test trusts the CA and each profile fails for its own reason:
              curl --cacert "$(cynic tls ca)" https://localhost:8443/
            """,
        subcommands: [CA.self, Client.self, Profiles.self])

    struct CA: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the path of the local CA's certificate (made at first use).")

        @Flag(help: "Print the certificate itself (PEM) instead of its path.")
        var pem = false

        @OptionGroup var ca: CAOptions

        func run() throws {
            let authority = try loadCA(ca)
            print(pem ? authority.certificatePEM : authority.certificatePath, terminator: pem ? "" : "\n")
        }
    }

    struct Client: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the paths of a client certificate and its key signed by the local CA, for client-cert-required.",
            discussion: "Two lines: the certificate, then the key (curl --cert CERT --key KEY).")

        @OptionGroup var ca: CAOptions

        func run() throws {
            let authority = try loadCA(ca)
            do {
                let client = try authority.clientCertificate()
                print(client.certificatePath)
                print(client.keyPath)
            } catch {
                throw failure("\(error)")
            }
        }
    }

    struct Profiles: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the certificate profiles a TLS service can present.")

        func run() {
            let width = CertificateProfile.all.map(\.name.count).max() ?? 0
            for profile in CertificateProfile.all {
                print(profile.name.padding(toLength: width + 2, withPad: " ", startingAt: 0) + profile.summary)
            }
        }
    }
}

/// The local CA of `options`' folder, loaded or made; its error as cynic's one line.
private func loadCA(_ options: CAOptions) throws -> LocalCA {
    do {
        return try LocalCA.loadOrCreate(folder: options.resolvedFolder)
    } catch {
        throw failure("\(error)")
    }
}
