import NIOCore

/// What the framing yields: a payload to decode, or why some bytes were dropped.
enum RecordFrame {
    case payload(ByteBuffer)
    case skipped(String)
}

/// Splits a connection's bytes into records: a 4-byte big-endian length, then that many bytes.
///
/// A record is only handed on once all of it has arrived; nothing is allocated up front for an announced
/// length, so memory per connection stays under `maxRecordBytes` plus what one read brings.
///
/// A length over the cap is not buffered: its bytes are counted and dropped as they stream in, and the
/// record after it is read normally. We discard rather than close because an honest sender with one
/// oversized record (a huge traceback) then keeps its connection and its later records; a hostile or
/// garbage prefix (0xFFFFFFFF, or "GET " read as a length) costs nothing but the bytes it makes us skip,
/// and touches no other connection.
struct RecordFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = RecordFrame

    let maxRecordBytes: Int
    /// Bytes of an oversized record still to drop.
    private var discarding = 0

    init(maxRecordBytes: Int) {
        self.maxRecordBytes = maxRecordBytes
    }

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        if discarding > 0 {
            let dropped = min(discarding, buffer.readableBytes)
            buffer.moveReaderIndex(forwardBy: dropped)
            discarding -= dropped
            return discarding == 0 ? .continue : .needMoreData
        }
        guard let announced = buffer.getInteger(at: buffer.readerIndex, endianness: .big, as: UInt32.self) else {
            return .needMoreData
        }
        let length = Int(announced)
        if length == 0 {
            buffer.moveReaderIndex(forwardBy: 4)
            context.fireChannelRead(wrapInboundOut(.skipped("skipped a zero-length record")))
            return .continue
        }
        if length > maxRecordBytes {
            buffer.moveReaderIndex(forwardBy: 4)
            discarding = length
            context.fireChannelRead(wrapInboundOut(.skipped(
                "skipped a record of \(length) bytes, over the limit of \(maxRecordBytes); discarding its bytes as they arrive")))
            return .continue
        }
        guard buffer.readableBytes >= 4 + length else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 4)
        context.fireChannelRead(wrapInboundOut(.payload(buffer.readSlice(length: length)!)))
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer,
                             seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue, buffer.readableBytes > 0 {}
        // An oversized record cut short was already reported when its length arrived.
        if discarding == 0, buffer.readableBytes > 0 {
            let what = buffer.readableBytes < 4
                ? "\(buffer.readableBytes) bytes of a length prefix"
                : "\(buffer.readableBytes - 4) of the \(buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) ?? 0) bytes of a record"
            context.fireChannelRead(wrapInboundOut(.skipped("connection closed after \(what); dropped them")))
        }
        buffer.moveReaderIndex(to: buffer.writerIndex)
        return .needMoreData
    }
}
