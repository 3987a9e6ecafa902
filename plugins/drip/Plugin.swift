// drip — a correct response whose body trickles in at a set pace: one byte every interval_ms, or
// bits_per_second. http-slow, generalised.
//
// Tests a client's deadlines: bytes keep coming, so a read timeout never fires, yet the response
// takes as long as you like; at a bit rate, whether a minimum-speed check trips when it should.
import CynicPluginKit

final class Drip: Behaviour, ConnectionHandler {
    enum Pace {
        case interval(milliseconds: UInt64)
        case bitsPerSecond(UInt64)
    }

    var pace = Pace.interval(milliseconds: 1000)
    var size: UInt64 = 100
    /// The `body_file`'s bytes, sent instead of `size` bytes of the pattern.
    var file: [UInt8]?
    var contentType = "text/plain; charset=utf-8"

    private var length: UInt64 { file.map { UInt64($0.count) } ?? size }

    func request(_ request: HTTPRequest, on conn: Connection) {
        conn.send(HTTPResponse.head(headers: ["Content-Type": contentType,
                                              "Content-Length": String(length),
                                              "Connection": "close"]))
        send(from: 0, on: conn)
    }

    func resume(tag: UInt64, on conn: Connection) {
        send(from: tag, on: conn)
    }

    // Each `then` tag is the offset of the next piece: the host holds one piece at a time, and the
    // behaviour keeps nothing per connection.
    private func send(from offset: UInt64, on conn: Connection) {
        guard offset < length else {
            conn.close()
            return
        }
        let end = min(length, offset + pieceSize)
        if offset > 0 { conn.wait(milliseconds: pause(before: offset)) }
        if let file {
            conn.send(file[Int(offset)..<Int(end)])
        } else {
            conn.send(Pattern.bytes(offset..<end))
        }
        conn.then(end)
    }

    /// At a bit rate, what is due in 20 ms (at least a byte, at most 64 KiB): a timer per byte would
    /// cost more than the bytes at any useful rate.
    private var pieceSize: UInt64 {
        switch pace {
        case .interval: 1
        case .bitsPerSecond(let rate): min(max(rate / 400, 1), 65_536) // 400 = 8 bits / 20 ms
        }
    }

    /// At a bit rate: when the bytes before `offset` are due, less when those before the last piece
    /// were, so rounding to whole milliseconds never adds up. Each pause starts once the last
    /// piece is out, so a client that stalls is not caught up with a burst: the rate is a ceiling.
    private func pause(before offset: UInt64) -> UInt64 {
        switch pace {
        case .interval(let milliseconds):
            return milliseconds
        case .bitsPerSecond(let rate):
            func due(_ bytes: UInt64) -> UInt64 { UInt64(Double(bytes) * 8000 / Double(rate)) }
            return due(offset) - due(offset - pieceSize)
        }
    }

    func configure(bitsPerSecond: UInt64, interval: UInt32) throws {
        switch (bitsPerSecond, interval) {
        case (0, 0):
            throw ConfigurationError("bits_per_second and interval_ms are both 0: set one of them")
        case (0, _):
            pace = .interval(milliseconds: UInt64(interval))
        case (_, 0):
            pace = .bitsPerSecond(bitsPerSecond)
        default:
            throw ConfigurationError("bits_per_second and interval_ms are both set: pace by one and set the other "
                                     + "to 0 (interval_ms is 1000 unless set)")
        }
    }
}

private let configure: @convention(c) (UnsafeMutableRawPointer?, UInt64, UnsafePointer<CChar>?, UnsafePointer<CChar>?,
                                       UInt64, UInt32) -> UnsafePointer<CChar>? = {
    instance, size, bodyFile, contentType, bitsPerSecond, interval in
    Drip.configure(instance) {
        try $0.configure(bitsPerSecond: bitsPerSecond, interval: interval)
        $0.size = size
        if let bodyFile { $0.file = try StaticBody.contents(of: String(cString: bodyFile)) }
        if let contentType { $0.contentType = String(cString: contentType) }
    }
}

private let plugin = PluginDescriptor(
    name: "drip", description: "Sends a correct response's body one byte every interval_ms, or at bits_per_second.",
    defaultPort: 2012, http: true,
    params: [Parameter("size", .uint64, default: "100", doc: "Bytes in the body, of a text pattern."),
             Parameter("body_file", .string, doc: "Send this file's bytes instead (read at start)."),
             Parameter("content_type", .string, default: "text/plain; charset=utf-8",
                       doc: "The Content-Type header sent with the body."),
             Parameter("bits_per_second", .uint64, default: "0",
                       doc: "Send at this rate, in pieces every 20 ms or so; 0: pace by interval_ms."),
             Parameter("interval_ms", .uint32, default: "1000",
                       doc: "Send one byte every interval_ms; set it to 0 to pace by bits_per_second.")],
    configure: unsafeBitCast(configure, to: cynic_any_fn.self), behaviour: Drip.self)

@_cdecl("cynic_plugin_entry")
public func cynicPluginEntry() -> UnsafePointer<cynic_plugin> { plugin.pointer }
