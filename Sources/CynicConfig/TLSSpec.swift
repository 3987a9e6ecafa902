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

extension TLSSpec {
    /// What is wrong with the spec's own fields, whatever the profile: the field ("alpn[1]",
    /// "names[0]") and why; nil when nothing is. The files and the profile are checked when the
    /// chain is made.
    public var problem: (field: String, reason: String)? {
        for (index, proto) in alpn.enumerated() where proto.utf8.isEmpty || proto.utf8.count > 255 {
            return ("alpn[\(index)]", "an ALPN protocol name is 1 to 255 bytes, got \(proto.utf8.count)")
        }
        if alpn.count > 16 { return ("alpn", "at most 16 protocols, got \(alpn.count)") }
        if let names {
            if names.isEmpty { return ("names", "expected at least one name") }
            if names.count > 16 { return ("names", "at most 16 names, got \(names.count)") }
            for (index, name) in names.enumerated() where !Self.isCertificateName(name) {
                return ("names[\(index)]", "expected a DNS name or an IP address, got '\(name)'")
            }
        }
        if let low = minimumVersion, let high = maximumVersion, low > high {
            return ("min_version", "\(low.rawValue) is above max_version \(high.rawValue)")
        }
        return nil
    }

    /// A DNS name (letters, digits, '-', '.', a leading "*." wildcard) or an IP address, as a
    /// certificate's subjectAltName holds them.
    static func isCertificateName(_ name: String) -> Bool {
        guard !name.isEmpty, name.utf8.count <= 253 else { return false }
        if name.contains(":") { return name.allSatisfy { $0.isHexDigit || $0 == ":" || $0 == "." } }
        let allowed = name.unicodeScalars.allSatisfy { scalar in
            scalar.isASCII && (("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar)
                || ("0"..."9").contains(scalar) || scalar == "-" || scalar == "." || scalar == "*")
        }
        return allowed && !name.hasPrefix(".") && !name.contains("..")
    }
}
