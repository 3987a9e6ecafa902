import CCynicPlugin
import CynicPlugins
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// The host's function table, `cynic_host`: the C entry points through which a plugin asks for
/// actions on a connection. Each plugin generation gets a copy of this one with a `log` of its
/// own (`PluginHostTables`); this table, valid until the process exits, is what they copy.
enum HostTable {
    /// Allocated once and never freed: plugins keep the pointer for the life of the process.
    nonisolated(unsafe) static let pointer: UnsafePointer<cynic_host> = {
        // nonisolated(unsafe): written once here, read-only afterwards.
        let table = UnsafeMutablePointer<cynic_host>.allocate(capacity: 1)
        table.initialize(to: cynic_host(
            abi_version: CYNIC_ABI_VERSION,
            struct_size: UInt32(MemoryLayout<cynic_host>.size),
            send: { conn, bytes, length in
                guard length == 0 || bytes != nil else { return CYNIC_ERR_INVALID }
                let buffer = UnsafeRawBufferPointer(start: bytes, count: length)
                return ConnectionDriver.withHandle(conn) { $0.submit(.send(buffer), at: $1) }
            },
            wait: { conn, milliseconds in
                ConnectionDriver.withHandle(conn) { $0.submit(.wait(milliseconds: milliseconds), at: $1) }
            },
            close: { conn in ConnectionDriver.withHandle(conn) { $0.submit(.close, at: $1) } },
            reset: { conn in ConnectionDriver.withHandle(conn) { $0.submit(.reset, at: $1) } },
            shutdown_write: { conn in ConnectionDriver.withHandle(conn) { $0.submit(.shutdownWrite, at: $1) } },
            stop_reading: { conn in ConnectionDriver.withHandle(conn) { $0.submit(.stopReading, at: $1) } },
            then: { conn, tag in ConnectionDriver.withHandle(conn) { $0.submit(.then(tag: tag), at: $1) } },
            cancel_pending: { conn in ConnectionDriver.withHandle(conn) { driver, _ in driver.cancelPending() } },
            // Replaced in each plugin's own table by a function that knows the plugin (see
            // `PluginHostTable`); this one serves a table that cannot get its own.
            log: { conn, level, message in HostTable.log(conn, level, message, withoutConnection: pluginLogger) },
            get_extension: { id in
                guard let id, strcmp(id, CYNIC_CONNECT_ID) == 0 else { return nil }
                return UnsafeRawPointer(connectTable)
            },
            after: { conn, milliseconds, tag in
                ConnectionDriver.withHandle(conn) { $0.after(milliseconds: milliseconds, tag: tag, at: $1) }
            }
        ))
        return UnsafePointer(table)
    }()

    /// cynic.connect/1: outbound connections on behalf of a client connection.
    nonisolated(unsafe) static let connectTable: UnsafePointer<cynic_connect> = {
        // nonisolated(unsafe): written once here, read-only afterwards.
        let table = UnsafeMutablePointer<cynic_connect>.allocate(capacity: 1)
        table.initialize(to: cynic_connect(
            abi_version: CYNIC_ABI_VERSION,
            struct_size: UInt32(MemoryLayout<cynic_connect>.size),
            open: { client, address, events, state, upstream in
                guard let address, let events, let upstream else { return CYNIC_ERR_INVALID }
                return ConnectionDriver.withHandle(client) { driver, _ in
                    let text = PluginText.read(address, limit: UpstreamAddress.maximumLength + 1).text
                    guard let parsed = UpstreamAddress(text) else {
                        driver.log(.warning, "cynic.connect/1 open: cannot read the address '\(PluginText.printable(text))' (expected host:port, [v6]:port or unix:/path)")
                        return CYNIC_ERR_INVALID
                    }
                    // The plugin's struct may be older and smaller: missing callbacks read as NULL.
                    var copied = cynic_upstream_events()
                    let declared = Int(events.pointee.struct_size)
                    withUnsafeMutableBytes(of: &copied) { target in
                        target.copyMemory(from: UnsafeRawBufferPointer(start: events, count: min(max(declared, 8), target.count)))
                    }
                    let (status, handle) = driver.openUpstream(to: parsed, events: copied, eventState: state)
                    if let handle { upstream.pointee = handle }
                    return status
                }
            }
        ))
        return UnsafePointer(table)
    }()

    /// For log lines a plugin writes outside any connection.
    static let pluginLogger = Logger(label: "cynic.plugin")

    /// `host->log`: with a live `conn`, on its connection's logger (its service and peer);
    /// otherwise on `logger`, which names the plugin when the caller's table knows it.
    static func log(_ conn: OpaquePointer?, _ level: UInt32, _ message: UnsafePointer<CChar>?,
                    withoutConnection logger: Logger) {
        guard let message else { return }
        // Bounded and escaped: a plugin's message is one line of the log, whatever it holds.
        let text = PluginText.printable(message, limit: PluginText.messageLimit)
        let level = Logger.Level(pluginLevel: level)
        if let conn, ConnectionDriver.withHandle(conn, { driver, _ in driver.log(level, text); return CYNIC_OK }) == CYNIC_OK {
            return
        }
        logger.log(level: level, "\(text)")
    }
}

extension Logger.Level {
    init(pluginLevel: UInt32) {
        switch pluginLevel {
        case CYNIC_LOG_DEBUG: self = .debug
        case CYNIC_LOG_INFO: self = .info
        case CYNIC_LOG_WARNING: self = .warning
        default: self = .error
        }
    }
}
