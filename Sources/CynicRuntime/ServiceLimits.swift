/// What one client, or many, can make a service hold: the bounds a user sees and sets
/// (`--max-connections`, `--max-header-bytes`, `--max-body-bytes`; a service's own
/// `max_connections`). Each default is what a user of a real server would expect, so a client
/// under test meets the limit where it would meet it in production.
public struct ServiceLimits: Sendable, Equatable {
    /// Connections one service holds at once, TLS handshakes included; a service's own
    /// `max_connections` wins. One over it is accepted and closed at once (`ConnectionAdmission`).
    public var maxConnections: Int
    /// The request line's target and every header of one HTTP request, in bytes; over it the
    /// client gets 431 and the connection closes.
    public var maxHeaderBytes: Int
    /// The body of one HTTP request the host holds for a plugin; over it the client gets 413.
    public var maxBodyBytes: Int

    public init(maxConnections: Int = Self.defaultMaxConnections, maxHeaderBytes: Int = Self.defaultMaxHeaderBytes,
                maxBodyBytes: Int = Self.defaultMaxBodyBytes) {
        precondition(maxConnections > 0 && maxHeaderBytes > 0 && maxBodyBytes > 0, "a limit of 0")
        self.maxConnections = maxConnections
        self.maxHeaderBytes = maxHeaderBytes
        self.maxBodyBytes = maxBodyBytes
    }

    /// Holding many idle or stalled connections is cynic's job (bench/idle_connections.py holds
    /// 10,000 on one service), so the bound is well above that; it is there so that a runaway
    /// client loop meets a limit before the open-file limit, which every service shares. nginx
    /// bounds a worker at 512 by default and HAProxy derives its maxconn from the open-file limit;
    /// both are sized for real work per connection, which cynic mostly does not do.
    public static let defaultMaxConnections = 16_384
    /// nginx's default, `large_client_header_buffers 4 8k`: 32 KiB for the head in all. Node.js
    /// (16 KiB) answers 431 as cynic does; nginx says 400 or 414.
    public static let defaultMaxHeaderBytes = 32 << 10
    /// nginx's `client_max_body_size` default, 1m, answered 413 as here.
    public static let defaultMaxBodyBytes = 1 << 20

    public static let defaults = ServiceLimits()
}
