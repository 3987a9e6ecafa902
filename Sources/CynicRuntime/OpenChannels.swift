import NIOCore
import Synchronization

/// The client connections of one service that are open now, so that the service can close them
/// all at once (toxiproxy's "disable a proxy" drops its connections). One lock when a connection
/// opens, one when it ends.
final class OpenChannels: Sendable {
    private let channels = Mutex<[ObjectIdentifier: any Channel]>([:])

    func opened(_ channel: any Channel) {
        channels.withLock { $0[ObjectIdentifier(channel)] = channel }
    }

    func closed(_ channel: any Channel) {
        _ = channels.withLock { $0.removeValue(forKey: ObjectIdentifier(channel)) }
    }

    /// Every one open now.
    var all: [any Channel] { channels.withLock { Array($0.values) } }

    /// Closes every one with a FIN, on its event loop; each ends `closed` by cynic with `reason`.
    /// Returns how many were asked to close.
    @discardableResult
    func closeAll(reason: String) -> Int {
        let open = channels.withLock { Array($0.values) }
        for channel in open {
            channel.pipeline.fireUserInboundEventTriggered(CloseConnection(reason: reason))
        }
        return open.count
    }
}

/// Asks a connection's driver to change its shapers (see `Service.reshapeOpenConnections`),
/// travelling as `CloseConnection` does.
struct Reshape: Sendable {
    let removed: [String]
    /// Drawn for this connection, by direction.
    let downstream: [ServiceSetup.Shaper]
    let upstream: [ServiceSetup.Shaper]
}

/// Asks a connection's driver to close it (a user event: it travels to the driver on the
/// channel's event loop, from any thread).
struct CloseConnection: Sendable {
    let reason: String
}
