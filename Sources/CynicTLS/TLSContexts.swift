import CynicConfig
import NIOSSL
import Synchronization
import X509

/// The chain a server presents, leaf first, as it is sent, with the leaf's key.
public struct PresentedChain: Sendable {
    public let certificates: [Certificate]
    let key: Certificate.PrivateKey

    public var leaf: Certificate { certificates[0] }
    /// Each certificate sent, PEM, leaf first.
    public var pemCertificates: [String] { certificates.map(PEMFiles.pem) }
    /// The chain file: the certificates sent, PEM, leaf first.
    public var pem: String { pemCertificates.joined() }
}

/// The server contexts TLS services use, built from a `TLSSpec`: a profile's chain minted from
/// the local CA, or the user's own files. Each is built once per process, at its first request,
/// and shared after (a `NIOSSLContext` serves any number of connections): keyed by the spec, so
/// two services with the same spec share one. Minting happens under the lock, so a first
/// request for an RSA profile (weak-key, sha1-signature) holds up other first requests for
/// ~70–260 ms; later ones only look up. A user's files are read at their first request too: a
/// change to them is seen by a new `TLSContexts`. cynic keeps one per process.
public final class TLSContexts: Sendable {
    public let ca: LocalCA
    private let state = Mutex(State())

    private struct State {
        var contexts: [ContextKey: NIOSSLContext] = [:]
        var chains: [ChainKey: PresentedChain] = [:]
        /// One key of each kind and use: every leaf shares one (an RSA key takes 45–130 ms).
        var keys: [String: Certificate.PrivateKey] = [:]
    }

    /// What a context depends on: the spec's fields, with the names resolved.
    private struct ContextKey: Hashable {
        let chain: ChainKey
        let alpn: [String]
        let minimumVersion: CynicConfig.TLSVersion?
        let maximumVersion: CynicConfig.TLSVersion?
    }

    private enum ChainKey: Hashable {
        case profile(CertificateProfile, names: [String])
        case files(certificate: String, key: String)
    }

    /// localhost, 127.0.0.1 and ::1: what a minted leaf is for unless the spec names others.
    public static let defaultNames = ["localhost", "127.0.0.1", "::1"]

    public init(ca: LocalCA) {
        self.ca = ca
    }

    /// The server context `spec` asks for, built at the first call and the same object after.
    public func context(for spec: TLSSpec) throws(TLSError) -> NIOSSLContext {
        let chainKey = try Self.chainKey(for: spec)
        let key = ContextKey(chain: chainKey, alpn: spec.alpn, minimumVersion: spec.minimumVersion,
                             maximumVersion: spec.maximumVersion)
        return try state.withLock { state throws(TLSError) in
            if let context = state.contexts[key] { return context }
            let chain = try chain(for: chainKey, state: &state)
            let context = try makeContext(for: spec, chain: chain)
            state.contexts[key] = context
            return context
        }
    }

    /// The chain `spec`'s server presents (minting it if it is not yet), for a user to look at
    /// or a test to verify.
    public func presentedChain(for spec: TLSSpec) throws(TLSError) -> PresentedChain {
        let chainKey = try Self.chainKey(for: spec)
        return try state.withLock { state throws(TLSError) in try chain(for: chainKey, state: &state) }
    }

    /// The profile `spec` asks for, or an error listing the profiles; nil for the user's own files.
    public static func profile(for spec: TLSSpec) throws(TLSError) -> CertificateProfile? {
        guard spec.certificateFile == nil, spec.keyFile == nil else { return nil }
        return try profile(named: spec.profile)
    }

    private static func profile(named name: String) throws(TLSError) -> CertificateProfile {
        guard let profile = CertificateProfile.named(name) else {
            throw TLSError(field: "tls.profile", "no profile '\(name)'; the profiles are \(CertificateProfile.names)")
        }
        return profile
    }

    private static func chainKey(for spec: TLSSpec) throws(TLSError) -> ChainKey {
        switch (spec.certificateFile, spec.keyFile) {
        case (let certificate?, let key?):
            return .files(certificate: certificate, key: key)
        case (_?, nil):
            throw TLSError(field: "tls.key", "tls.certificate is given without its key")
        case (nil, _?):
            throw TLSError(field: "tls.certificate", "tls.key is given without the certificate")
        case (nil, nil):
            let profile = try profile(named: spec.profile)
            let names: [String]
            switch profile.recipe.names {
            case .requested: names = spec.names ?? defaultNames
            case .only(let only): names = only
            }
            guard !names.isEmpty, !names.contains(where: \.isEmpty) else {
                throw TLSError(field: "tls.names", "a leaf needs at least one name, and no empty one")
            }
            return .profile(profile, names: names)
        }
    }

    private func chain(for key: ChainKey, state: inout State) throws(TLSError) -> PresentedChain {
        if let chain = state.chains[key] { return chain }
        let chain: PresentedChain
        switch key {
        case .files(let certificatePath, let keyPath):
            chain = try Self.userChain(certificatePath: certificatePath, keyPath: keyPath)
        case .profile(let profile, let names):
            var minter = ChainMinter(ca: ca.authority, keys: state.keys)
            do {
                chain = try minter.mint(profile.recipe, names: names)
                state.keys = minter.keys
            } catch {
                throw TLSError(field: "tls.profile", "cannot mint the \(profile.name) chain: \(error)")
            }
        }
        state.chains[key] = chain
        return chain
    }

    /// The user's chain (leaf first) and key, checked to belong together.
    static func userChain(certificatePath: String, keyPath: String) throws(TLSError) -> PresentedChain {
        let certificates: [Certificate]
        let key: Certificate.PrivateKey
        do {
            certificates = try PEMFiles.certificates(in: certificatePath)
        } catch {
            throw TLSError(field: "tls.certificate", file: error.file, error.reason)
        }
        do {
            key = try PEMFiles.privateKey(in: keyPath)
        } catch {
            throw TLSError(field: "tls.key", file: error.file, error.reason)
        }
        guard key.publicKey == certificates[0].publicKey else {
            throw TLSError(field: "tls.key", file: keyPath,
                           "the key does not match the first certificate in \(certificatePath) (the leaf comes first)")
        }
        return PresentedChain(certificates: certificates, key: key)
    }

    /// Checks what can be checked of `spec` without reading files or minting: the profile, the
    /// names, a certificate file with its key, the version bounds. For a configuration check;
    /// `context(for:)` checks the same and the rest.
    public static func check(_ spec: TLSSpec) throws(TLSError) {
        _ = try chainKey(for: spec)
        _ = try versions(for: spec)
    }

    /// The versions a spec's server speaks: the spec's bounds, else its profile's, else (nil) the
    /// TLS library's (NIOSSL: 1.0 to 1.3).
    static func versions(for spec: TLSSpec) throws(TLSError)
        -> (minimum: CynicConfig.TLSVersion?, maximum: CynicConfig.TLSVersion?) {
        let profile = try profile(for: spec)
        let minimum = spec.minimumVersion ?? profile?.recipe.versions.lowerBound
        let maximum = spec.maximumVersion ?? profile?.recipe.versions.upperBound
        if let minimum, let maximum, minimum > maximum {
            let field = spec.minimumVersion != nil ? "tls.min_version" : "tls.max_version"
            let whose = spec.minimumVersion != nil && spec.maximumVersion != nil ? "" : " (the \(spec.profile) profile's)"
            throw TLSError(field: field, "the lowest version, \(minimum.rawValue), is above the highest, \(maximum.rawValue)\(whose)")
        }
        return (minimum, maximum)
    }

    private func makeContext(for spec: TLSSpec, chain: PresentedChain) throws(TLSError) -> NIOSSLContext {
        let profile = try Self.profile(for: spec)
        let (minimum, maximum) = try Self.versions(for: spec)
        do {
            var configuration = TLSConfiguration.makeServerConfiguration(
                certificateChain: try chain.certificates.map {
                    .certificate(try NIOSSLCertificate(bytes: PEMFiles.der($0), format: .der))
                },
                privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(PEMFiles.pem(chain.key).utf8), format: .pem)))
            if let minimum { configuration.minimumTLSVersion = minimum.nio }
            if let maximum { configuration.maximumTLSVersion = maximum.nio }
            configuration.applicationProtocols = spec.alpn
            if profile?.recipe.requiresClientCertificate == true {
                configuration.certificateVerification = .noHostnameVerification
                configuration.trustRoots = .certificates(
                    [try NIOSSLCertificate(bytes: PEMFiles.der(ca.certificate), format: .der)])
                // As real servers do: the client learns which CA to pick a certificate for.
                configuration.sendCANameList = true
            }
            return try NIOSSLContext(configuration: configuration)
        } catch let error as TLSError {
            throw error
        } catch {
            throw TLSError(field: spec.certificateFile == nil ? "tls.profile" : "tls.certificate",
                           "the TLS library refuses the chain or key: \(error)")
        }
    }
}

extension CynicConfig.TLSVersion {
    var nio: NIOSSL.TLSVersion {
        switch self {
        case .tls1_0: .tlsv1
        case .tls1_1: .tlsv11
        case .tls1_2: .tlsv12
        case .tls1_3: .tlsv13
        }
    }
}
