/// Why TLS cannot be set up as asked: one line, naming the `TLSSpec` field at fault when one is
/// ("tls.profile", "tls.certificate", "tls.key", "tls.min_version", "tls.names"...), the file when
/// one is, then what is wrong with it.
///
///     tls.key: /home/me/server-key.pem: the key does not match the certificate in /home/me/server.pem
///     /run/user/1000/cynic/ca/ca.pem: not a PEM certificate (no "-----BEGIN CERTIFICATE-----" line)
public struct TLSError: Error, Sendable, CustomStringConvertible, Equatable {
    /// The configuration key at fault, as a user writes it ("tls.profile"); nil when the fault is
    /// not in the spec (the local CA's files, minting).
    public let field: String?
    /// The file at fault, if any.
    public let file: String?
    /// What is wrong, without the field or the file.
    public let reason: String

    public init(field: String? = nil, file: String? = nil, _ reason: String) {
        self.field = field
        self.file = file
        self.reason = reason
    }

    public var description: String {
        ([field, file].compactMap { $0 } + [reason]).joined(separator: ": ")
    }

}
