/// The actions a plugin asks the host for — the same seven at every stage of their life: as a
/// plugin asks (the bytes borrowed from it), as queued (the bytes copied), as traced (a count and
/// a preview). One description, with what a send carries as the only thing that changes.
public enum HostAction<Bytes> {
    case send(Bytes)
    case wait(milliseconds: UInt64)
    /// An orderly close: FIN.
    case close
    /// An abortive close: RST.
    case reset
    case shutdownWrite
    case stopReading
    /// The plugin's resume callback is called with `tag`.
    case then(tag: UInt64)

    /// The same action, its bytes (if a send) turned into another form.
    func mapBytes<Other>(_ transform: (Bytes) throws -> Other) rethrows -> HostAction<Other> {
        switch self {
        case .send(let bytes): .send(try transform(bytes))
        case .wait(let milliseconds): .wait(milliseconds: milliseconds)
        case .close: .close
        case .reset: .reset
        case .shutdownWrite: .shutdownWrite
        case .stopReading: .stopReading
        case .then(let tag): .then(tag: tag)
        }
    }

    /// Whether nothing may be queued after it: the connection ends with it.
    var endsConnection: Bool {
        switch self {
        case .close, .reset: true
        default: false
        }
    }
}

extension HostAction: Sendable where Bytes: Sendable {}
extension HostAction: Equatable where Bytes: Equatable {}

/// What a traced send carries: how many bytes, and the first `previewLimit` of them.
public struct SentBytes: Sendable, Equatable {
    public let count: Int
    public let preview: [UInt8]

    public init(count: Int, preview: [UInt8]) {
        self.count = count
        self.preview = preview
    }
}
