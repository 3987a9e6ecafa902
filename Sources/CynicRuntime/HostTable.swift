import CCynicPlugin
import Logging

/// The host's function table, `cynic_host`: the C entry points through which a plugin asks for
/// actions on a connection. One table for the whole process, valid until it exits.
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
                return ConnectionDriver.withDriver(conn) { $0.send(buffer) }
            },
            wait: { conn, milliseconds in
                ConnectionDriver.withDriver(conn) { $0.enqueue(.wait(milliseconds: milliseconds)) }
            },
            close: { conn in ConnectionDriver.withDriver(conn) { $0.enqueue(.close) } },
            reset: { conn in ConnectionDriver.withDriver(conn) { $0.enqueue(.reset) } },
            shutdown_write: { conn in ConnectionDriver.withDriver(conn) { $0.enqueue(.shutdownWrite) } },
            stop_reading: { conn in ConnectionDriver.withDriver(conn) { $0.enqueue(.stopReading) } },
            then: { conn, tag in ConnectionDriver.withDriver(conn) { $0.enqueue(.then(tag: tag)) } },
            cancel_pending: { conn in ConnectionDriver.withDriver(conn) { $0.cancelPending() } },
            log: { conn, level, message in
                guard let message else { return }
                let text = String(cString: message)
                let level = Logger.Level(pluginLevel: level)
                if let conn, ConnectionDriver.withDriver(conn, { $0.log(level, text); return CYNIC_OK }) == CYNIC_OK {
                    return
                }
                pluginLogger.log(level: level, "\(text)")
            },
            get_extension: { _ in nil }
        ))
        return UnsafePointer(table)
    }()

    /// For log lines a plugin writes outside any connection.
    static let pluginLogger = Logger(label: "cynic.plugin")
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
