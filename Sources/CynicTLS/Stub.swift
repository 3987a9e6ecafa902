// STUB until the tls-profiles branch lands: the API CynicRuntime calls, files only.
import CynicConfig
import NIOSSL
import Synchronization

public struct TLSError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public let field: String?
    public init(_ message: String, field: String? = nil) { self.message = message; self.field = field }
    public var description: String { message }
}

public final class LocalCA: Sendable {
    public let folder: String
    init(folder: String) { self.folder = folder }
    public static func loadOrCreate(folder: String? = nil) throws(TLSError) -> LocalCA { LocalCA(folder: folder ?? "/tmp") }
    public var certificatePath: String { folder + "/ca.pem" }
    public var certificatePEM: String { "" }
    public func clientCertificate() throws(TLSError) -> (certificatePath: String, keyPath: String) {
        (folder + "/client.pem", folder + "/client-key.pem")
    }
}

public struct CertificateProfile: Sendable {
    public let name: String
    public let summary: String
    public static let all: [CertificateProfile] = [CertificateProfile(name: "valid", summary: "stub")]
    public static func named(_ name: String) -> CertificateProfile? { all.first { $0.name == name } }
}

public final class TLSContexts: Sendable {
    public let ca: LocalCA
    public init(ca: LocalCA) { self.ca = ca }
    public func context(for spec: TLSSpec) throws(TLSError) -> NIOSSLContext {
        guard let certificate = spec.certificateFile, let key = spec.keyFile else { throw TLSError("stub: files only", field: "tls.profile") }
        do {
            var configuration = TLSConfiguration.makeServerConfiguration(
                certificateChain: try NIOSSLCertificate.fromPEMFile(certificate).map { .certificate($0) },
                privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem)))
            configuration.applicationProtocols = spec.alpn
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw TLSError("\(error)", field: "tls.certificate")
        }
    }
}
