/// What can go wrong talking to the control API, each said in one line.
public enum ControlClientError: Error, Sendable, CustomStringConvertible {
    /// No connection to the API: nothing listens there, the host is unknown, the connect timed
    /// out. `reason` says which, with the fix when there is one.
    case unreachable(endpoint: ControlEndpoint, reason: String)
    /// The API answered with an error: its message, and the field at fault when it names one.
    case refused(status: Int, message: String, field: String?)
    /// The connection ended, or the time ran out, before the answer was whole.
    case incomplete(endpoint: ControlEndpoint, reason: String)
    /// An answer that is not what the API sends (another program on that port, or a newer API).
    case unexpected(String)

    public var description: String {
        switch self {
        case .unreachable(let endpoint, let reason):
            "cannot reach the control API at \(endpoint): \(reason)"
        case .refused(_, let message, let field?):
            "\(message) (field: \(field))"
        case .refused(_, let message, nil):
            message
        case .incomplete(let endpoint, let reason):
            "no complete answer from \(endpoint): \(reason)"
        case .unexpected(let what):
            what
        }
    }
}
