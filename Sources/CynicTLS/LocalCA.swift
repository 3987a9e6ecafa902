import CynicPrivateFolder
import Foundation
import Synchronization
import X509
#if canImport(Glibc)
import Glibc
#endif

/// The certificate authority that signs what cynic's TLS services present: clients that trust
/// it (`curl --cacert ca.pem`) see a valid chain as valid, so every other profile fails for the
/// one reason it is made for.
///
/// It lives in a folder as `ca.pem` and `ca-key.pem` (0600), by default
/// `<PrivateFolder.forCurrentUser()>/ca`, and is minted there at first use: a P-256 key (about a
/// millisecond; an RSA-2048 one would take 45–130 ms at every first start), CN "cynic local CA
/// (user@host)", valid 10 years. A user brings their own by putting their `ca.pem` and
/// `ca-key.pem` there (P-256, P-384, P-521, RSA or Ed25519), or by pointing `folder` elsewhere.
public final class LocalCA: Sendable {
    public let folder: String
    /// The CA's certificate, PEM, as in `ca.pem`.
    public let certificatePEM: String
    let authority: KeyPair
    /// Serializes `clientCertificate()` within the process; a lock on the folder does between processes.
    private let clientCertificateLock = Mutex(())

    public var certificatePath: String { folder + "/ca.pem" }
    public var keyPath: String { folder + "/ca-key.pem" }
    public var certificate: Certificate { authority.certificate }

    private init(folder: String, authority: KeyPair) {
        self.folder = folder
        self.authority = authority
        self.certificatePEM = PEMFiles.pem(authority.certificate)
    }

    /// Loads the CA from `folder` (ca.pem + ca-key.pem), or mints one there at first use.
    ///
    /// Two processes starting at once end with one CA: each mints into a temporary folder beside
    /// `folder` and renames it into place; the one whose rename loses reads the winner's.
    public static func loadOrCreate(folder: String? = nil) throws(TLSError) -> LocalCA {
        var folder = folder ?? ""
        if folder.isEmpty { folder = try defaultFolder() }
        if access(folder + "/ca.pem", F_OK) != 0, access(folder + "/ca-key.pem", F_OK) != 0 {
            try create(in: folder)
        }
        return try load(from: folder)
    }

    /// `<PrivateFolder.forCurrentUser()>/ca`.
    public static func defaultFolder() throws(TLSError) -> String {
        do {
            return try PrivateFolder.forCurrentUser() + "/ca"
        } catch {
            throw TLSError(file: error.path, error.reason)
        }
    }

    static func load(from folder: String) throws(TLSError) -> LocalCA {
        let certificatePath = folder + "/ca.pem", keyPath = folder + "/ca-key.pem"
        guard let certificate = try PEMFiles.certificates(in: certificatePath).first else {
            throw TLSError(file: certificatePath, "no certificate in it")
        }
        let key = try PEMFiles.privateKey(in: keyPath)
        guard key.publicKey == certificate.publicKey else {
            throw TLSError(file: keyPath, "the key does not match the certificate in \(certificatePath)")
        }
        switch try? certificate.extensions.basicConstraints {
        case .isCertificateAuthority:
            break
        default:
            throw TLSError(file: certificatePath, "not a CA certificate (its basic constraints do not say CA:TRUE)")
        }
        if let usage = try? certificate.extensions.keyUsage, !usage.keyCertSign {
            throw TLSError(file: certificatePath, "its key usage does not allow signing certificates (keyCertSign)")
        }
        if certificate.notValidAfter < Date() {
            throw TLSError(file: certificatePath, "it expired on \(certificate.notValidAfter); "
                           + "remove ca.pem and ca-key.pem for a new one")
        }
        return LocalCA(folder: folder, authority: KeyPair(certificate: certificate, key: key))
    }

    private static func create(in folder: String) throws(TLSError) {
        do {
            try PrivateFolder.makeParents(of: folder)
        } catch {
            throw TLSError(file: error.path, error.reason)
        }
        let temporary = "\(folder).new-\(getpid())-\(UInt32.random(in: .min ... .max))"
        guard mkdir(temporary, 0o700) == 0 else {
            throw TLSError(file: temporary, "cannot create it: \(errnoText())")
        }
        defer { removeFolder(temporary) }
        let authority: KeyPair
        do {
            authority = try Mint.certificate(
                subject: Mint.name("cynic local CA (\(userAndHost()))"), key: KeyKind.p256.make(),
                role: .authority(pathLength: nil), validity: .authority, issuer: nil)
        } catch {
            throw TLSError(file: folder, "cannot mint a CA: \(error)")
        }
        try PEMFiles.write(PEMFiles.pem(authority.key), to: temporary + "/ca-key.pem", mode: 0o600)
        try PEMFiles.write(PEMFiles.pem(authority.certificate), to: temporary + "/ca.pem", mode: 0o644)
        // A folder already there (another process won, or a user's) is left alone and loaded.
        if rename(temporary, folder) != 0, errno != ENOTEMPTY, errno != EEXIST {
            throw TLSError(file: folder, "cannot move the new CA into place: \(errnoText())")
        }
    }

    /// A client certificate signed by the CA, for mTLS (the `client-cert-required` profile):
    /// `client.pem` and `client-key.pem` beside the CA, CN "cynic client", minted at the first
    /// call and reused after — minted again if they are not the CA's (a user replaced the CA) or
    /// have expired.
    public func clientCertificate() throws(TLSError) -> (certificatePath: String, keyPath: String) {
        let certificatePath = folder + "/client.pem", keyPath = folder + "/client-key.pem"
        try clientCertificateLock.withLock { _ throws(TLSError) in
            let folderLock = try lockFolder()
            defer { close(folderLock) }
            if isOurs(certificatePath: certificatePath, keyPath: keyPath) { return }
            let client: KeyPair
            do {
                client = try Mint.certificate(
                    subject: Mint.name("cynic client"), key: KeyKind.p256.make(), role: .client,
                    validity: .authority, issuer: authority)
            } catch {
                throw TLSError(file: certificatePath, "cannot mint a client certificate: \(error)")
            }
            try PEMFiles.write(PEMFiles.pem(client.key), to: keyPath, mode: 0o600)
            try PEMFiles.write(PEMFiles.pem(client.certificate), to: certificatePath, mode: 0o644)
        }
        return (certificatePath, keyPath)
    }

    /// Whether `certificate` was signed by this CA's key.
    func signed(_ certificate: Certificate) -> Bool {
        certificate.issuer == authority.certificate.subject
            && authority.certificate.publicKey.isValidSignature(certificate.signature, for: certificate)
    }

    private func isOurs(certificatePath: String, keyPath: String) -> Bool {
        guard let certificate = try? PEMFiles.certificates(in: certificatePath).first,
              let key = try? PEMFiles.privateKey(in: keyPath) else { return false }
        return key.publicKey == certificate.publicKey && signed(certificate) && certificate.notValidAfter > Date()
    }

    /// An exclusive lock on the CA's folder, held while the descriptor returned is open.
    private func lockFolder() throws(TLSError) -> Int32 {
        let descriptor = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { throw TLSError(file: folder, "cannot open it: \(errnoText())") }
        while flock(descriptor, LOCK_EX) != 0 {
            guard errno == EINTR else {
                close(descriptor)
                throw TLSError(file: folder, "cannot lock it: \(errnoText())")
            }
        }
        return descriptor
    }
}

/// "user@host", so a user can tell this machine's cynic CA from another's in a trust store.
private func userAndHost() -> String {
    let user = getpwuid(geteuid()).map { String(cString: $0.pointee.pw_name) } ?? "uid \(geteuid())"
    var host = [CChar](repeating: 0, count: 256)
    gethostname(&host, host.count - 1)
    let name = String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    return "\(user)@\(name)"
}

/// Removes a folder cynic made and the files in it (not below: it makes none).
private func removeFolder(_ path: String) {
    if let names = try? FileManager.default.contentsOfDirectory(atPath: path) {
        names.forEach { unlink(path + "/" + $0) }
    }
    rmdir(path)
}
