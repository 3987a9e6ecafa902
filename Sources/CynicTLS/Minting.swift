import Crypto
import _CryptoExtras
import Foundation
import SwiftASN1
import X509

/// A certificate with its private key: the local CA, an intermediate, a leaf.
struct KeyPair: Sendable {
    let certificate: Certificate
    let key: Certificate.PrivateKey

    var isRSA: Bool { key.isRSA }
}

/// The kind of key a certificate is minted for.
public enum KeyKind: Sendable, Hashable, CustomStringConvertible {
    case p256
    /// RSA with this many bits; below 2048 only through swift-crypto's `unsafeKeySize`.
    case rsa(bits: Int)

    public var description: String {
        switch self {
        case .p256: "P-256"
        case .rsa(let bits): "RSA-\(bits)"
        }
    }

    func make() throws -> Certificate.PrivateKey {
        switch self {
        case .p256:
            return Certificate.PrivateKey(P256.Signing.PrivateKey())
        case .rsa(let bits):
            return Certificate.PrivateKey(try _RSA.Signing.PrivateKey(unsafeKeySize: .init(bitCount: bits)))
        }
    }
}

extension Certificate.PrivateKey {
    /// Whether it is an RSA key: only those sign with SHA-1, and want keyEncipherment.
    var isRSA: Bool { supportedSignatureAlgorithms.contains(.sha256WithRSAEncryption) }
}

/// What a certificate is for: its basic constraints, key usage and extended key usage.
enum CertificateRole {
    /// A CA; `pathLength` 0 for an intermediate that signs leaves only.
    case authority(pathLength: Int?)
    case server
    case client
}

/// When a certificate is valid, relative to the moment it is minted.
public enum ValidityWindow: Sendable, Hashable {
    /// From an hour ago (clocks drift) to 30 days from now.
    case current
    /// Ended yesterday, after 30 days.
    case expired
    /// Starts in 30 days, for 30 days.
    case notYetValid
    /// The local CA's: an hour ago to 10 years from now.
    case authority

    func dates(now: Date = Date()) -> (notBefore: Date, notAfter: Date) {
        let hour: TimeInterval = 3600, day: TimeInterval = 86_400
        switch self {
        case .current: return (now - hour, now + 30 * day)
        case .expired: return (now - 31 * day, now - day)
        case .notYetValid: return (now + 30 * day, now + 60 * day)
        case .authority: return (now - hour, now + 3652 * day)
        }
    }
}

enum Mint {
    /// Mints a certificate for `key` with `subject`, signed by `issuer` (nil: self-signed), with
    /// the extensions real CAs and servers carry.
    /// - Parameter sha1: sign with SHA-1 (the issuer's key must be RSA).
    static func certificate(subject: DistinguishedName, key: Certificate.PrivateKey, role: CertificateRole,
                            names: [String] = [], validity: ValidityWindow, issuer: KeyPair?,
                            sha1: Bool = false) throws -> KeyPair {
        let signingKey = issuer?.key ?? key
        let issuerName = issuer?.certificate.subject ?? subject
        let authorityKey = issuer.map(keyIdentifier(of:)) ?? SubjectKeyIdentifier(hash: key.publicKey).keyIdentifier
        let isRSA = key.isRSA
        let extensions = try Certificate.Extensions {
            switch role {
            case .authority(let pathLength):
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: pathLength))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
            case .server:
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true, keyEncipherment: isRSA))
                try ExtendedKeyUsage([.serverAuth])
            case .client:
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true, keyEncipherment: isRSA))
                try ExtendedKeyUsage([.clientAuth])
            }
            if !names.isEmpty {
                SubjectAlternativeNames(names.map(generalName(for:)))
            }
            SubjectKeyIdentifier(hash: key.publicKey)
            AuthorityKeyIdentifier(keyIdentifier: authorityKey)
        }
        let (notBefore, notAfter) = validity.dates()
        let certificate: Certificate
        if sha1 {
            certificate = try Certificate(
                version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: key.publicKey,
                notValidBefore: notBefore, notValidAfter: notAfter, issuer: issuerName, subject: subject,
                signatureAlgorithm: .sha1WithRSAEncryption, extensions: extensions, issuerPrivateKey: signingKey)
        } else {
            certificate = try Certificate(
                version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: key.publicKey,
                notValidBefore: notBefore, notValidAfter: notAfter, issuer: issuerName, subject: subject,
                extensions: extensions, issuerPrivateKey: signingKey)
        }
        return KeyPair(certificate: certificate, key: key)
    }

    /// The name of a minted certificate: its common name, and cynic as the organisation so a user
    /// can tell them from their own.
    static func name(_ commonName: String) throws -> DistinguishedName {
        try DistinguishedName {
            OrganizationName("cynic")
            CommonName(commonName)
        }
    }

    /// A name as a subject alternative name: an IP address (v4 or v6) as one, else a DNS name.
    static func generalName(for name: String) -> GeneralName {
        var v4 = in_addr(), v6 = in6_addr()
        if inet_pton(AF_INET, name, &v4) == 1 {
            return .ipAddress(ASN1OctetString(contentBytes: ArraySlice(withUnsafeBytes(of: &v4) { Array($0) })))
        }
        if inet_pton(AF_INET6, name, &v6) == 1 {
            return .ipAddress(ASN1OctetString(contentBytes: ArraySlice(withUnsafeBytes(of: &v6) { Array($0) })))
        }
        return .dnsName(name)
    }

    /// The key identifier a certificate signed by `issuer` names it by: its subject key
    /// identifier if it has one (a user's CA may use another method than the SHA-1 hash).
    private static func keyIdentifier(of issuer: KeyPair) -> ArraySlice<UInt8> {
        if let identifier = try? issuer.certificate.extensions.subjectKeyIdentifier {
            return identifier.keyIdentifier
        }
        return SubjectKeyIdentifier(hash: issuer.certificate.publicKey).keyIdentifier
    }

}

/// Mints a profile's chain from its recipe, signed (in the end) by the local CA.
struct ChainMinter {
    let ca: KeyPair
    /// Keys by kind and use, shared by every chain of the process: the RSA ones are slow to make.
    var keys: [String: Certificate.PrivateKey]

    mutating func key(_ kind: KeyKind, for use: String) throws -> Certificate.PrivateKey {
        if let key = keys["\(kind) \(use)"] { return key }
        let key = try kind.make()
        keys["\(kind) \(use)"] = key
        return key
    }

    mutating func mint(_ recipe: CertificateProfile.Recipe, names: [String]) throws -> PresentedChain {
        let leafKey = try key(recipe.leafKey, for: "leaf")
        var issuer: KeyPair?
        var sent: [Certificate] = []
        switch recipe.signer {
        case .localCA:
            issuer = ca
        case .selfSigned:
            issuer = nil
        case .otherRoot:
            let root = try Mint.certificate(
                subject: Mint.name("cynic untrusted root"), key: key(.p256, for: "other root"),
                role: .authority(pathLength: nil), validity: .authority, issuer: nil)
            issuer = root
            sent.append(root.certificate)
        case .unsentIntermediate:
            issuer = try Mint.certificate(
                subject: Mint.name("cynic intermediate (not sent)"), key: key(.p256, for: "intermediate"),
                role: .authority(pathLength: 0), validity: .authority, issuer: ca)
        }
        if recipe.sha1Signature, let signer = issuer, !signer.isRSA {
            let intermediate = try Mint.certificate(
                subject: Mint.name("cynic RSA intermediate (signs with SHA-1)"),
                key: key(.rsa(bits: 2048), for: "intermediate"),
                role: .authority(pathLength: 0), validity: .authority, issuer: signer)
            issuer = intermediate
            sent.insert(intermediate.certificate, at: 0)
        }
        let leaf = try Mint.certificate(
            subject: Mint.name(names[0]), key: leafKey, role: .server, names: names,
            validity: recipe.validity, issuer: issuer, sha1: recipe.sha1Signature)
        return PresentedChain(certificates: [leaf.certificate] + sent, key: leafKey)
    }
}
