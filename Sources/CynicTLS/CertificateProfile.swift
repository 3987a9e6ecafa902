import CynicConfig

/// A certificate profile: a chain, and how the server presenting it behaves, made to fail one
/// client check — or none, for `valid`. Profiles are data: a name, a summary a user reads (what
/// the chain is and what clients say of it, checked with curl 7.88 / OpenSSL 3.0 and Python 3.11),
/// and a recipe that `TLSContexts` mints from, lazily, once per process.
public struct CertificateProfile: Sendable, Hashable {
    public let name: String
    /// One line: what is presented, then what a client says.
    public let summary: String
    public let recipe: Recipe

    /// How to mint a profile's chain and set up its server.
    public struct Recipe: Sendable, Hashable {
        /// Who signs the leaf.
        public enum Signer: Sendable, Hashable {
            /// The local CA; nothing else is sent.
            case localCA
            /// The leaf itself.
            case selfSigned
            /// Another root, minted in memory and never written, sent after the leaf.
            case otherRoot
            /// An intermediate signed by the local CA, which the server does not send.
            case unsentIntermediate
        }

        public enum Names: Sendable, Hashable {
            /// The spec's names (default: localhost, 127.0.0.1 and ::1).
            case requested
            /// These names whatever the spec asks.
            case only([String])
        }

        public var leafKey: KeyKind = .p256
        public var signer: Signer = .localCA
        /// Sign the leaf with SHA-1. Only RSA signs with SHA-1: when the signer's key is not RSA
        /// (the local CA is P-256 unless a user brings their own), an RSA-2048 intermediate
        /// signed by the CA with SHA-256 signs the leaf, and is sent.
        public var sha1Signature = false
        public var validity: ValidityWindow = .current
        public var names: Names = .requested
        /// The versions spoken unless the spec says otherwise.
        public var versions: ClosedRange<TLSVersion> = .tls1_2 ... .tls1_3
        /// The server asks for a client certificate, refuses the handshake without one, and
        /// verifies it against the local CA.
        public var requiresClientCertificate = false
    }

    init(_ name: String, _ summary: String, _ recipe: Recipe = Recipe()) {
        self.name = name
        self.summary = summary
        self.recipe = recipe
    }

    /// The profile called `name`, or nil.
    public static func named(_ name: String) -> CertificateProfile? {
        all.first { $0.name == name }
    }

    /// The names, comma-separated, in order: what an error lists.
    public static var names: String { all.map(\.name).joined(separator: ", ") }

    /// Every profile, in this order: the control, the certificate's dates, its names, who signed
    /// it, its strength, then how the server behaves. The order is stable: lists and docs use it.
    public static let all: [CertificateProfile] = [
        CertificateProfile(
            "valid",
            "a P-256 leaf for the service's names signed by the local CA: passes with the CA "
                + "(curl --cacert ca.pem), fails without it (\"unable to get local issuer certificate\")"),
        CertificateProfile(
            "expired",
            "the valid chain, but the leaf ended yesterday: \"certificate has expired\" (openssl num=10)",
            Recipe(validity: .expired)),
        CertificateProfile(
            "not-yet-valid",
            "the valid chain, but the leaf starts in 30 days: \"certificate is not yet valid\" (num=9)",
            Recipe(validity: .notYetValid)),
        CertificateProfile(
            "wrong-host",
            "a leaf for wrong.host.invalid only, signed by the local CA: curl \"no alternative certificate "
                + "subject name matches target host name\", Python \"Hostname mismatch\" (num=62)",
            Recipe(names: .only(["wrong.host.invalid"]))),
        CertificateProfile(
            "self-signed",
            "a leaf for the right names that signed itself: \"self-signed certificate\" (num=18)",
            Recipe(signer: .selfSigned)),
        CertificateProfile(
            "untrusted-root",
            "a leaf signed by another root, which is sent too: \"self-signed certificate in certificate chain\" (num=19)",
            Recipe(signer: .otherRoot)),
        CertificateProfile(
            "incomplete-chain",
            "a leaf signed by an intermediate of the local CA that is not sent: "
                + "\"unable to get local issuer certificate\" (num=20)",
            Recipe(signer: .unsentIntermediate)),
        CertificateProfile(
            "weak-key",
            "an RSA-1024 leaf signed by the local CA: \"EE certificate key too weak\" (num=66)",
            Recipe(leafKey: .rsa(bits: 1024))),
        CertificateProfile(
            "sha1-signature",
            "a leaf signed with SHA-1 (by an RSA intermediate, sent, unless the CA is RSA): "
                + "\"CA signature digest algorithm too weak\" (num=68)",
            Recipe(sha1Signature: true)),
        CertificateProfile(
            "client-cert-required",
            "the valid chain, and the server requires a client certificate signed by the local CA (mTLS): "
                + "without one curl says \"alert certificate required\"; LocalCA.clientCertificate() passes",
            Recipe(requiresClientCertificate: true)),
        CertificateProfile(
            "tls1.0-only",
            "the valid chain over TLS 1.0 only (ECDHE, SHA-1 handshake signatures, as old servers did): "
                + "modern clients refuse (curl \"legacy sigalg disallowed or unsupported\", Python "
                + "\"TLSV1_ALERT_PROTOCOL_VERSION\"); an old-protocol client connects (openssl s_client -tls1 "
                + "-cipher DEFAULT@SECLEVEL=0)",
            Recipe(versions: .tls1_0 ... .tls1_0)),
        CertificateProfile(
            "tls1.1-only",
            "the valid chain over TLS 1.1 only, as tls1.0-only: modern clients refuse (curl \"legacy sigalg "
                + "disallowed or unsupported\", Python \"TLSV1_ALERT_PROTOCOL_VERSION\"); openssl s_client -tls1_1 "
                + "-cipher DEFAULT@SECLEVEL=0 connects",
            Recipe(versions: .tls1_1 ... .tls1_1)),
    ]
}
