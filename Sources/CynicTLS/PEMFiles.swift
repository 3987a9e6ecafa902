import Foundation
import SwiftASN1
import X509
#if canImport(Glibc)
import Glibc
#endif

/// Reading and writing the PEM files cynic keeps (the CA's, the client certificate's) and the
/// ones a user gives it, each error naming the file.
enum PEMFiles {
    static func read(_ path: String) throws(TLSError) -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            let reason = access(path, F_OK) == 0 ? "cannot read it: \(errnoText())" : "no such file"
            throw TLSError(file: path, reason)
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// The certificates in a PEM file, in order; at least one.
    static func certificates(in path: String) throws(TLSError) -> [Certificate] {
        let documents = try documents(in: path, expecting: "CERTIFICATE")
        var certificates: [Certificate] = []
        for (index, document) in documents.enumerated() where document.discriminator == "CERTIFICATE" {
            do {
                certificates.append(try Certificate(pemDocument: document))
            } catch {
                throw TLSError(file: path, "certificate \(index + 1) cannot be parsed: \(error)")
            }
        }
        guard !certificates.isEmpty else {
            throw TLSError(file: path, "no certificate in it (a \(documents[0].discriminator) block instead)")
        }
        return certificates
    }

    /// The one private key in a PEM file.
    static func privateKey(in path: String) throws(TLSError) -> Certificate.PrivateKey {
        let documents = try documents(in: path, expecting: "PRIVATE KEY")
        guard let document = documents.first(where: { $0.discriminator.hasSuffix("PRIVATE KEY") }) else {
            throw TLSError(file: path, "no private key in it (a \(documents[0].discriminator) block instead)")
        }
        if document.discriminator == "ENCRYPTED PRIVATE KEY" {
            throw TLSError(file: path, "the key is encrypted; cynic needs it unencrypted "
                           + "(openssl pkey -in \(path) -out key.pem)")
        }
        do {
            return try Certificate.PrivateKey(pemDocument: document)
        } catch {
            throw TLSError(file: path, "the key cannot be read (P-256, P-384, P-521, RSA and Ed25519 can): \(error)")
        }
    }

    private static func documents(in path: String, expecting kind: String) throws(TLSError) -> [PEMDocument] {
        let text = try read(path)
        guard text.contains("-----BEGIN ") else {
            throw TLSError(file: path, "not PEM (no \"-----BEGIN \(kind)-----\" line)")
        }
        do {
            return try PEMDocument.parseMultiple(pemString: text)
        } catch {
            throw TLSError(file: path, "not valid PEM: \(error)")
        }
    }

    /// Writes `text` to `path` through a temporary file beside it and a rename, so a reader sees
    /// the old file or the whole new one; the file gets `mode` whatever the umask.
    static func write(_ text: String, to path: String, mode: mode_t) throws(TLSError) {
        let temporary = "\(path).\(getpid())-\(UInt32.random(in: .min ... .max))"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard descriptor >= 0 else { throw TLSError(file: temporary, "cannot create it: \(errnoText())") }
        var failure: String?
        if fchmod(descriptor, mode) != 0 { failure = "cannot set its mode: \(errnoText())" }
        let bytes = Array(text.utf8)
        var offset = 0
        while failure == nil, offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
            if written < 0, errno == EINTR { continue }
            if written <= 0 { failure = "cannot write it: \(errnoText())" } else { offset += written }
        }
        if failure == nil, fsync(descriptor) != 0 { failure = "cannot sync it: \(errnoText())" }
        close(descriptor)
        if failure == nil, rename(temporary, path) != 0 { failure = "cannot rename it to \(path): \(errnoText())" }
        if let failure {
            unlink(temporary)
            throw TLSError(file: temporary, failure)
        }
    }

    /// The certificate as PEM, ending in a newline, so that several make a chain file.
    static func pem(_ certificate: Certificate) -> String {
        // Serializing a certificate we hold cannot fail: it was parsed or minted.
        ((try? certificate.serializeAsPEM().pemString) ?? "") + "\n"
    }

    static func pem(_ key: Certificate.PrivateKey) throws(TLSError) -> String {
        do {
            return try key.serializeAsPEM().pemString + "\n"
        } catch {
            throw TLSError("cannot serialize a \(key) as PEM: \(error)")
        }
    }

    static func der(_ certificate: Certificate) -> [UInt8] {
        var serializer = DER.Serializer()
        try? serializer.serialize(certificate)
        return serializer.serializedBytes
    }
}

func errnoText() -> String { String(cString: strerror(errno)) }
