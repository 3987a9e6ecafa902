import CynicConfig
import CynicTLS
import NIOSSL
import Synchronization

/// Where a server's TLS services get their contexts: the local CA of `caFolder` (the private
/// folder's `ca` when nil), loaded or made at the first need and kept; a failure is tried again
/// at the next need, so a CA the user fixes is picked up without a restart.
public final class TLSSource: Sendable {
    public let caFolder: String?
    private let loaded = Mutex<TLSContexts?>(nil)

    /// For those without a server of their own (`cynic check`, tests): the default CA folder.
    public static let `default` = TLSSource()

    public init(caFolder: String? = nil) {
        self.caFolder = caFolder
    }

    /// The CA and the contexts minted from it.
    public func contexts() throws(TLSError) -> TLSContexts {
        try loaded.withLock { loaded throws(TLSError) in
            if let loaded { return loaded }
            let contexts = TLSContexts(ca: try LocalCA.loadOrCreate(folder: caFolder))
            loaded = contexts
            return contexts
        }
    }

    /// The server context `spec` asks for.
    func context(for spec: TLSSpec) throws(TLSError) -> NIOSSLContext {
        try contexts().context(for: spec)
    }
}
