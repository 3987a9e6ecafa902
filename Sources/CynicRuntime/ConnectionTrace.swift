/// What happened on one connection, as the host saw it: what arrived, each action as it was
/// performed, and how the connection ended.
///
/// A service started with an observer (`Service.start(..., observer:)`) reports every event of
/// every connection to it, synchronously, on the connection's event loop, in the order they
/// happen: keep the observer short and never block in it. Without an observer nothing is built or
/// reported. `cynic check` prints these; a debug log could too.
public struct ConnectionEvent: Sendable {
    /// The connection, numbered 1, 2, ... in accept order within its service.
    public let connection: Int
    public let kind: Kind

    public init(connection: Int, kind: Kind) {
        self.connection = connection
        self.kind = kind
    }

    public enum Kind: Sendable {
        /// Accepted from `peer` ("127.0.0.1:51234"), before the plugin's conn_open.
        case opened(peer: String?)
        /// Bytes arrived from the peer (raw behaviours).
        case received(bytes: Int)
        /// A complete HTTP request arrived (HTTP behaviours): "GET /path".
        case request(String)
        /// The peer closed its sending side (we read EOF); the connection may go on.
        case peerClosed
        /// The host started performing an action a plugin queued (after the shapers).
        case performed(ConnectionAction)
        /// The connection is over; the last event of a connection.
        case ended(ConnectionEnd)
    }
}

/// An action as the host performs it: a send as its byte count and first bytes.
public typealias ConnectionAction = HostAction<SentBytes>

extension HostAction: CustomStringConvertible where Bytes == SentBytes {
    /// How many leading bytes of a send an event carries.
    public static var previewLimit: Int { 48 }

    public var description: String {
        switch self {
        case .send(let sent):
            let more = sent.count > sent.preview.count ? "..." : ""
            return "send \(sent.count) byte\(sent.count == 1 ? "" : "s")  \"\(Self.printable(sent.preview))\(more)\""
        case .wait(let milliseconds): return "wait \(milliseconds) ms"
        case .then(let tag): return "then \(tag)"
        case .close: return "close (FIN)"
        case .reset: return "reset (RST)"
        case .shutdownWrite: return "shutdown_write (FIN, still reading)"
        case .stopReading: return "stop_reading"
        }
    }

    /// Bytes as one line: printable ASCII as is, the rest escaped (\r, \n, \t, \xNN).
    public static func printable(_ bytes: [UInt8]) -> String {
        var text = ""
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "\r"): text += "\\r"
            case UInt8(ascii: "\n"): text += "\\n"
            case UInt8(ascii: "\t"): text += "\\t"
            case UInt8(ascii: "\\"): text += "\\\\"
            case UInt8(ascii: "\""): text += "\\\""
            case 0x20..<0x7f: text.append(Character(Unicode.Scalar(byte)))
            default:
                let hex = String(byte, radix: 16)
                text += "\\x" + (hex.count == 1 ? "0" : "") + hex
            }
        }
        return text
    }
}

/// Receives a service's connection events; see `ConnectionEvent`.
public typealias ConnectionObserver = @Sendable (ConnectionEvent) -> Void
