import NIOCore
import NIOSSL
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// How a connection ended: what happened on the wire (`kind`), whose doing it was (`endedBy`),
/// and why, when there is more to say (`reason`). The connection's record, its trace line and
/// its metrics all say this.
public struct ConnectionEnd: Sendable, Equatable, CustomStringConvertible {
    /// What happened on the wire; the raw values are those of the event log's `end`.
    public enum Kind: String, Sendable, CaseIterable {
        /// cynic sent a FIN.
        case closed
        /// cynic sent an RST.
        case reset
        /// The client sent a FIN first, then the connection ended.
        case peerClosed = "peer_closed"
        /// The client reset the connection (ECONNRESET).
        case peerReset = "peer_reset"
        /// ETIMEDOUT on the socket, or the behaviour ended the client after an upstream's connect
        /// timed out.
        case timeout
        /// The behaviour ended the client after an upstream refused the connect (ECONNREFUSED).
        case upstreamRefused = "upstream_refused"
        /// The behaviour ended the client after an upstream could not be reached (no route, no
        /// network, a name that does not resolve).
        case upstreamUnreachable = "upstream_unreachable"
        /// cynic was shutting down and closed what was left.
        case serverStopping = "server_stopping"
        /// The TLS handshake did not complete: the client refused the certificate (its alert is the
        /// reason), they had no version or cipher in common, a client certificate was missing, or
        /// the client left or spoke no TLS.
        case tlsFailed = "tls_failed"
        /// cynic dropped the connection itself: a request it could not parse.
        case dropped
        /// Another socket error.
        case error
    }

    /// Whose doing the end was; its description is the event log's `ended_by`.
    public enum Origin: Sendable, Equatable, CustomStringConvertible {
        case behaviour
        /// A shaper's own close or reset (one that forwards the behaviour's keeps `behaviour`).
        case shaper(String)
        case peer
        case cynic

        public var description: String {
            switch self {
            case .behaviour: "behaviour"
            case .shaper(let name): "shaper \(name)"
            case .peer: "peer"
            case .cynic: "cynic"
            }
        }
    }

    public var kind: Kind
    public var endedBy: Origin
    public var reason: String?

    public init(_ kind: Kind, by endedBy: Origin, reason: String? = nil) {
        self.kind = kind
        self.endedBy = endedBy
        self.reason = reason
    }

    /// What `cynic check` prints after "connection ended: ".
    public var description: String {
        let because = reason.map { ": \($0)" } ?? ""
        let from: String
        if case .shaper(let name) = endedBy { from = ", from shaper \(name)" } else { from = "" }
        switch kind {
        case .closed: return "closed by cynic (FIN)\(from)\(because)"
        case .reset: return "reset by cynic (RST)\(from)\(because)"
        case .peerClosed: return "closed by the peer (FIN)"
        case .peerReset: return "reset by the peer\(because)"
        case .timeout: return "timed out\(because)"
        case .upstreamRefused, .upstreamUnreachable: return "ended after its upstream failed\(because)"
        case .serverStopping: return "closed by cynic: the server is stopping"
        case .tlsFailed: return "TLS handshake failed\(because)"
        case .dropped: return "dropped by cynic\(because)"
        case .error: return "socket error\(because)"
        }
    }

    /// An error on the socket: the peer's reset, a timeout, or another error.
    static func socketError(_ error: any Error) -> ConnectionEnd {
        // After the handshake (under TLS 1.3 a client refuses the certificate once the server's
        // part is done), BoringSSL's errors say what the TLS layer saw.
        if error is NIOSSLError || error is BoringSSLError {
            let failure = TLSFailure(error)
            return ConnectionEnd(.tlsFailed, by: failure.endedBy, reason: failure.reason)
        }
        guard let code = (error as? IOError)?.errnoCode else { return ConnectionEnd(.error, by: .cynic, reason: "\(error)") }
        let reason = String(cString: strerror(code))
        switch code {
        // EPIPE: a write after the peer's reset, before a read has seen it.
        case ECONNRESET, EPIPE: return ConnectionEnd(.peerReset, by: .peer, reason: reason)
        case ETIMEDOUT: return ConnectionEnd(.timeout, by: .peer, reason: reason)
        default: return ConnectionEnd(.error, by: .peer, reason: reason)
        }
    }

    /// How a client connection ended, once it has: `ending` is what was known when the socket
    /// closed (our close or reset, a socket error, a dropped request, cynic's own close); without
    /// it the socket closed under us: after our FIN (a shutdown_write, sent by `finSentFirstBy`
    /// before the peer's) once the peer's came, NIO closes the socket itself. A behaviour that ends
    /// its client after the group's last upstream connect failed (`errno`) ends it because of that
    /// failure.
    public static func decide(_ ending: ConnectionEnd?, finSentFirstBy: Origin? = nil, peerClosed: Bool,
                              serverStopping: Bool, lastConnectFailure: (address: String, errno: Int32)?) -> ConnectionEnd {
        var end: ConnectionEnd
        if let ending {
            end = ending
        } else if serverStopping {
            return ConnectionEnd(.serverStopping, by: .cynic)
        } else if let finSentFirstBy {
            end = ConnectionEnd(.closed, by: finSentFirstBy)
        } else if peerClosed {
            return ConnectionEnd(.peerClosed, by: .peer)
        } else {
            return ConnectionEnd(.error, by: .peer, reason: "the socket closed")
        }
        if let failure = lastConnectFailure, end.endedBy == .behaviour, end.kind == .closed || end.kind == .reset {
            let signal = end.kind == .reset ? "RST" : "FIN"
            end.reason = "upstream \(failure.address): \(String(cString: strerror(failure.errno))) (the client got a \(signal))"
            switch failure.errno {
            case ECONNREFUSED: end.kind = .upstreamRefused
            case ETIMEDOUT: end.kind = .timeout
            default: end.kind = .upstreamUnreachable
            }
        }
        return end
    }
}

/// An upstream connect that failed: where to, and why (strerror's text).
struct FailedConnect: Sendable, Equatable {
    let address: String
    let errno: Int32
    var error: String { String(cString: strerror(errno)) }
}

/// Whether cynic is shutting down: connections closed from then on without another cause end as
/// `server_stopping`. Process-wide: one cynic runs one set of servers.
public enum ServerShutdown {
    private static let stopping = Atomic<Bool>(false)

    /// Called once the drain time is over, before the event loops close what is left.
    public static func begin() { stopping.store(true, ordering: .relaxed) }

    public static var isUnderWay: Bool { stopping.load(ordering: .relaxed) }
}
