// The log sink's length framing, then its record decoders, on one connection's bytes.
//
// The bytes go through the sink's own RecordFrameDecoder in a channel pipeline, once whole and
// once in small pieces (a client's bytes arrive however the kernel splits them), and then the
// connection closes. Checked: both give the same frames; those frames are what the wire format
// says they are (a model of "4-byte big-endian length, then that many bytes" below); each payload
// decodes to a record or is refused with a reason.
@testable import CynicLogSink
import FuzzSupport
import NIOCore
import NIOEmbedded

/// Small, so an input of a few kilobytes reaches the oversized-record path; the host's is 1 MiB.
let maxRecordBytes = 512

enum Frame: Equatable {
    case payload([UInt8])
    case skipped(String)
}

final class Collector: ChannelInboundHandler {
    typealias InboundIn = RecordFrame
    var frames: [Frame] = []

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .payload(let buffer): frames.append(.payload(Array(buffer.readableBytesView)))
        case .skipped(let reason): frames.append(.skipped(reason))
        }
    }
}

func frames(of input: [UInt8], pieceSize: Int) -> [Frame] {
    let channel = EmbeddedChannel()
    let collector = Collector()
    do {
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(RecordFrameDecoder(maxRecordBytes: maxRecordBytes)))
        try channel.pipeline.syncOperations.addHandler(collector)
        var offset = 0
        while offset < input.count {
            let end = min(offset + pieceSize, input.count)
            try channel.writeInbound(ByteBuffer(bytes: input[offset..<end]))
            offset = end
        }
        _ = try channel.finish()
    } catch {
        invariant(false, "the pipeline threw: \(error)")
    }
    return collector.frames
}

/// The payloads the wire format gives, and whether anything else (a skipped record, a cut
/// tail) is there: what the decoder must agree with.
func modelPayloads(of input: [UInt8]) -> (payloads: [[UInt8]], skips: Int) {
    var payloads: [[UInt8]] = []
    var skips = 0
    var position = 0
    while position < input.count {
        guard input.count - position >= 4 else { skips += 1; break }
        let length = input[position..<position + 4].reduce(0) { $0 << 8 | Int($1) }
        position += 4
        if length == 0 { skips += 1; continue }
        if length > maxRecordBytes { skips += 1; position += length; continue }
        guard input.count - position >= length else { skips += 1; break }
        payloads.append(Array(input[position..<position + length]))
        position += length
    }
    return (payloads, skips)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzLogFrames(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    let input = bytes(start, count)
    let whole = frames(of: input, pieceSize: max(input.count, 1))
    // Pieces of 2 to 12 bytes: a length prefix split every way, at a cost a fuzzer can afford
    // (each piece is a read through the pipeline).
    let pieces = frames(of: input, pieceSize: 2 + input.count % 11)
    invariant(whole == pieces, "the frames depend on how the bytes arrived: \(whole.count) whole, \(pieces.count) in pieces")

    let model = modelPayloads(of: input)
    let payloads = whole.compactMap { if case .payload(let bytes) = $0 { bytes } else { nil } }
    let skips = whole.count - payloads.count
    invariant(payloads == model.payloads, "payloads differ from the wire format's: \(payloads.count), expected \(model.payloads.count)")
    invariant(skips == model.skips, "\(skips) skipped, the wire format says \(model.skips)")

    for frame in whole {
        switch frame {
        case .skipped(let reason):
            invariant(!reason.isEmpty, "a skip without a reason")
        case .payload(let payload):
            do {
                let record = try LogRecord.decode(payload: ByteBuffer(bytes: payload), peerProcessID: 4242)
                invariant(record.processID != nil, "the peer's pid did not stand in for a missing one")
            } catch {
                invariant(!error.description.isEmpty, "a refused record without a reason")
            }
        }
    }
    return 0
}

/// `main`, as SwiftPM names it for this executable: libFuzzer's driver (see FuzzSupport).
@_cdecl("FuzzLogFrames_main")
public func entry(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    runFuzzer(argc, argv) { data, size in fuzzLogFrames(data, size) }
}
