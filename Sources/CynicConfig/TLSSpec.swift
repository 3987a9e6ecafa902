/// A TLS version a service can be limited to, as users write it ("1.2").
public enum TLSVersion: String, Sendable, Equatable, CaseIterable, Comparable {
    case tls1_0 = "1.0"
    case tls1_1 = "1.1"
    case tls1_2 = "1.2"
    case tls1_3 = "1.3"

    /// "1.0, 1.1, 1.2 or 1.3": what errors expect.
    public static let choices = allCases.dropLast().map(\.rawValue).joined(separator: ", ") + " or " + allCases.last!.rawValue

    public static func < (lhs: TLSVersion, rhs: TLSVersion) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}

/// How a service speaks TLS: the host terminates it, so the behaviour and its shapers see
/// plaintext. The chain it presents comes from a certificate profile (minted from the local CA)
/// or from the user's own certificate and key files.
public struct TLSSpec: Sendable, Equatable {
    /// A certificate profile's name ("valid", "expired", "client-cert-required"...); ignored
    /// when `certificateFile` is given.
    public var profile: String
    /// A PEM file with the chain to present, leaf first, and the PEM file of its key: the user's
    /// own, instead of a profile's.
    public var certificateFile: String?
    public var keyFile: String?
    /// The protocols offered in ALPN, in order of preference; empty: no ALPN.
    public var alpn: [String]
    /// Bounds on the versions spoken; nil: the profile's, else the TLS library's.
    public var minimumVersion: TLSVersion?
    public var maximumVersion: TLSVersion?
    /// The names a minted leaf certificate is for; nil: the profile's (for most, localhost,
    /// 127.0.0.1 and ::1).
    public var names: [String]?

    public static let defaultProfile = "valid"

    public init(profile: String = TLSSpec.defaultProfile, certificateFile: String? = nil, keyFile: String? = nil,
                alpn: [String] = [], minimumVersion: TLSVersion? = nil, maximumVersion: TLSVersion? = nil,
                names: [String]? = nil) {
        self.profile = profile
        self.certificateFile = certificateFile
        self.keyFile = keyFile
        self.alpn = alpn
        self.minimumVersion = minimumVersion
        self.maximumVersion = maximumVersion
        self.names = names
    }
}
