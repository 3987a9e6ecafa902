import CynicTestSupport
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import CynicRuntime

/// The pipeline an HTTP behaviour's connection reads through (Service.swift), on an
/// EmbeddedChannel: what the driver is handed and what the client is answered, byte for byte.
private final class Inputs: ChannelInboundHandler {
    typealias InboundIn = ConnectionInput
    var requests: [CollectedRequest] = []
    var refusals: [String] = []

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .request(let request): requests.append(request)
        case .badRequest(let reason): refusals.append(reason)
        case .bytes: Issue.record("raw bytes out of an HTTP pipeline")
        }
    }
}

@Suite("HTTP request assembly, from inputs found by fuzzing (scripts/fuzz.sh http-request)")
struct HTTPRequestAssemblerTests {
    @Test("a request the decoder fails on twice (its line, then the close) is refused once and answered once")
    func refusedOnce() throws {
        // fuzz/corpus/http-request/found-second-refusal: curl's POST with its request line cut
        // to "GET /inP/2.1" and a header mangled.
        let bytes = try FuzzCorpus.bytes("http-request", "found-second-refusal")
        let channel = EmbeddedChannel()
        let inputs = Inputs()
        // The pipeline of an HTTP behaviour's connection, with the default limits (Service.swift),
        // on a socket that half-closes as a real one does when the refusal lingers.
        let limits = ServiceLimits()
        try channel.pipeline.syncOperations.addHandler(HalfClosingSocket())
        try channel.pipeline.syncOperations.addHandler(HTTPRequestAssembler.decoder(bounding: limits))
        try channel.pipeline.syncOperations.addHandler(HTTPRequestAssembler(maxHeaderBytes: limits.maxHeaderBytes,
                                                                            maxBodyBytes: limits.maxBodyBytes))
        try channel.pipeline.syncOperations.addHandler(inputs)
        try channel.writeInbound(ByteBuffer(bytes: bytes))
        // The client's close: the decoder fails a second time on it, and the refusal lingering
        // since the first is handed on.
        channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        var answer = ""
        while let written = try channel.readOutbound(as: ByteBuffer.self) { answer += String(buffer: written) }
        _ = try channel.finish()
        #expect(inputs.requests.isEmpty)
        #expect(inputs.refusals.count == 1)
        #expect(inputs.refusals.first?.hasPrefix("malformed HTTP request") == true)
        #expect(answer == "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    }
}
