import CynicTestSupport
import NIOCore
import Testing

@testable import CynicLogSink

/// Every committed input of the log sink's fuzz targets (fuzz/corpus/log-*), through the sink's
/// decoders: the framing on a real connection, the JSON and pickle decoders as the sink calls them.
@Suite("The log sink's fuzz corpora")
struct FuzzCorpusTests {
    @Test("each log-frames input, on its own connection, is taken or skipped; the sink serves on")
    func frames() async throws {
        let names = FuzzCorpus.names("log-frames")
        #expect(names.count >= 10)
        // The cap the fuzz harness uses, so oversized inputs take the same path here.
        try await SinkFixture.with(maxRecordBytes: 512) { sink in
            var nonEmpty = 0
            for name in names {
                let bytes = try FuzzCorpus.bytes("log-frames", name)
                if !bytes.isEmpty { nonEmpty += 1 }
                let client = try await sink.connect()
                try await client.send(bytes)
                try await client.close()
            }
            let honest = try await sink.connect()
            try await honest.send(framedJSON(#"{"name": "honest", "message": "after the corpus"}"#))
            #expect(await sink.waitUntil { $0.records.contains { $0.message == "after the corpus" } })
            // Every input that has bytes makes at least one record or one warning.
            #expect(await sink.waitUntil { $0.records.count - 1 + $0.warningMessages.count >= nonEmpty })
            try await honest.close()
        }
    }

    @Test("each log-json and log-pickle input is decoded or refused with a reason",
          arguments: ["log-json", "log-pickle"])
    func records(target: String) throws {
        let names = FuzzCorpus.names(target)
        #expect(names.count >= 5)
        var decoded = 0
        for name in names {
            let bytes = try FuzzCorpus.bytes(target, name)
            do {
                let record = try LogRecord.decode(payload: ByteBuffer(bytes: bytes), peerProcessID: 1)
                #expect(record.processID != nil)
                decoded += 1
            } catch {
                #expect(!error.description.isEmpty, "\(target)/\(name)")
            }
        }
        // The seeds are real records (Python's SocketHandler, the README's JSON).
        #expect(decoded >= 5)
    }
}
