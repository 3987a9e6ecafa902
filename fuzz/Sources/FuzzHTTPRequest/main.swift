// HTTP request assembly: a client's bytes through NIOHTTP1's decoder and the host's
// HTTPRequestAssembler, the pipeline an HTTP behaviour's connection has (Service.swift), and each
// request lent to a plugin as a `cynic_http_request`.
//
// Checked: whole or in pieces, the bytes give the same requests and the same answer; a refusal
// is answered once, with a 400, 413 or 431, and nothing is handed on after it; no body passes the
// cap; the C view of a request says what the request says.
import CCynicPlugin
@testable import CynicRuntime
#if canImport(Glibc)
import Glibc
#endif
import FuzzSupport
import NIOCore
import NIOEmbedded
import NIOHTTP1

/// Small, so a fuzzed input reaches the caps; the host's defaults are ServiceLimits' (a 32 KiB
/// head, a 1 MiB body).
let maxBodyBytes = 1024
let limits = ServiceLimits(maxHeaderBytes: 2048, maxBodyBytes: maxBodyBytes)

struct Request: Equatable {
    let method, uri: String
    let version: HTTPVersion
    let headers: [String]
    let body: [UInt8]
}

enum Input: Equatable {
    case request(Request)
    case badRequest
}

final class Collector: ChannelInboundHandler {
    typealias InboundIn = ConnectionInput
    var inputs: [Input] = []

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .request(let request):
            checkCView(of: request)
            inputs.append(.request(Request(method: request.head.method.rawValue, uri: request.head.uri,
                                           version: request.head.version,
                                           headers: request.head.headers.map { "\($0.name): \($0.value)" },
                                           body: request.body)))
        case .badRequest(let reason):
            invariant(!reason.isEmpty, "a refused request without a reason")
            inputs.append(.badRequest)
        case .bytes:
            invariant(false, "raw bytes out of an HTTP pipeline")
        }
    }

    /// Other errors go on to the connection's driver, which closes the connection.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {}
}

/// A C string as the plugin reads it: up to its first NUL, as `strlen` does.
func cText(_ pointer: UnsafePointer<CChar>?) -> [UInt8] {
    guard let pointer else { return [] }
    return Array(UnsafeBufferPointer(start: pointer, count: strlen(pointer))).map { UInt8(bitPattern: $0) }
}

func visible(_ text: String) -> [UInt8] { Array(text.utf8.prefix { $0 != 0 }) }

func checkCView(of request: CollectedRequest) {
    invariant(request.body.count <= maxBodyBytes, "a body of \(request.body.count) bytes passed the cap of \(maxBodyBytes)")
    request.withCRequest { view in
        let c = view.pointee
        invariant(c.struct_size == UInt32(MemoryLayout<cynic_http_request>.size), "struct_size \(c.struct_size)")
        invariant(cText(c.method) == visible(request.head.method.rawValue), "the method differs in C")
        invariant(cText(c.target) == visible(request.head.uri), "the target differs in C")
        invariant(Int(c.header_count) == request.head.headers.count, "header_count \(c.header_count)")
        for (index, header) in request.head.headers.enumerated() {
            let headers = c.headers!
            invariant(cText(headers[index].name) == visible(header.name), "header \(index)'s name differs in C")
            invariant(cText(headers[index].value) == visible(header.value), "header \(index)'s value differs in C")
        }
        invariant(c.body_length == request.body.count, "body_length \(c.body_length) for \(request.body.count) bytes")
        invariant((c.body == nil) == request.body.isEmpty, "a body pointer for no body, or none for a body")
        invariant(c.keep_alive == request.head.isKeepAlive, "keep_alive differs in C")
    }
}

/// A socket's half-close, as EmbeddedChannel has none: a refusal closes its output and goes on
/// reading (the lingering close), which EmbeddedChannel would take for a close of the whole
/// channel. Here the output's close is taken and nothing more is written.
final class HalfClosingSocket: ChannelOutboundHandler {
    typealias OutboundIn = NIOAny

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        guard mode == .output else { return context.close(mode: mode, promise: promise) }
        promise?.succeed(())
    }
}

/// What the pipeline handed on, and what it answered, for a client that sends `bytes` in pieces
/// of `pieceSize` and then its FIN (a refusal lingers until then: it is handed on at the FIN).
func inputs(of bytes: [UInt8], pieceSize: Int) -> (inputs: [Input], answer: [UInt8]) {
    let channel = EmbeddedChannel()
    let collector = Collector()
    var answer: [UInt8] = []
    do {
        let handlers = channel.pipeline.syncOperations
        try handlers.addHandler(HalfClosingSocket())
        try handlers.addHandler(HTTPRequestAssembler.decoder(bounding: limits))
        try handlers.addHandler(HTTPRequestAssembler(maxHeaderBytes: limits.maxHeaderBytes, maxBodyBytes: limits.maxBodyBytes))
        try handlers.addHandler(collector)
        var offset = 0
        while offset < bytes.count {
            let end = min(offset + pieceSize, bytes.count)
            try channel.writeInbound(ByteBuffer(bytes: bytes[offset..<end]))
            offset = end
        }
        channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        while let written = try channel.readOutbound(as: ByteBuffer.self) { answer += Array(written.readableBytesView) }
        _ = try channel.finish()
    } catch {
        invariant(false, "the pipeline threw: \(error)")
    }
    return (collector.inputs, answer)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHTTPRequest(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    let input = bytes(start, count)
    let whole = inputs(of: input, pieceSize: max(input.count, 1))
    let pieces = inputs(of: input, pieceSize: 1 + input.count % 7)
    invariant(whole.inputs == pieces.inputs, "the requests depend on how the bytes arrived:\n\(whole.inputs)\n\(pieces.inputs)")
    invariant(whole.answer == pieces.answer, "the answer depends on how the bytes arrived")

    let refusals = whole.inputs.filter { $0 == .badRequest }.count
    invariant(refusals <= 1 && (refusals == 0 || whole.inputs.last == .badRequest), "something was handed on after a refusal")
    let answer = String(decoding: whole.answer, as: UTF8.self)
    if refusals == 1 {
        // Every refusal is answered, one at the client's FIN too: it can still read.
        invariant(["HTTP/1.1 400 ", "HTTP/1.1 413 ", "HTTP/1.1 431 "].contains { answer.hasPrefix($0) }, "a refusal answered with \(answer.debugDescription)")
        invariant(answer.components(separatedBy: "HTTP/1.1 ").count == 2, "more than one answer: \(answer.debugDescription)")
    } else {
        invariant(whole.answer.isEmpty, "an answer without a refusal: \(answer.debugDescription)")
    }
    return 0
}

/// `main`, as SwiftPM names it for this executable: libFuzzer's driver (see FuzzSupport).
@_cdecl("FuzzHTTPRequest_main")
public func entry(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    runFuzzer(argc, argv) { data, size in fuzzHTTPRequest(data, size) }
}
