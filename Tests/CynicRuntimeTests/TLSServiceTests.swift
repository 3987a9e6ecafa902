import CynicConfig
import CynicPlugins
import CynicRuntime
import CynicTestSupport
import Foundation
import Testing

/// A TLS client in Python's standard `ssl` module, as an application uses it: it trusts the CA
/// given (or the system's with "none"), connects to 127.0.0.1:PORT under the name `localhost`,
/// sends a request, and reads to the end. Prints one JSON line: how the connection ended
/// (`eof`: a close_notify; `reset`; `ssl: REASON`, an EOF without close_notify among them;
/// `timeout`), the plaintext bytes it read, and their start.
let tlsProbe = #"""
    import json, socket, ssl, sys
    port, ca, request = int(sys.argv[1]), sys.argv[2], sys.argv[3].encode().decode("unicode_escape").encode("latin-1")
    context = ssl.create_default_context(cafile=None if ca == "none" else ca)
    got, end = b"", "eof"
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with context.wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False) as tls:
                if request:
                    tls.sendall(request)
                while True:
                    data = tls.recv(65536)
                    if not data:
                        break
                    got += data
    except (ConnectionResetError, BrokenPipeError):
        end = "reset"
    except ssl.SSLError as error:
        end = "ssl: " + str(error.reason or error)
    except socket.timeout:
        end = "timeout"
    print(json.dumps({"end": end, "bytes": len(got), "text": got[:300].decode("latin-1")}))
    """#

struct TLSAnswer: Decodable {
    let end: String
    let bytes: Int
    let text: String

    /// What `tlsProbe` gets from `port` trusting `ca` (a path, or "none").
    init(port: Int, ca: String, request: String = "GET / HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n") throws {
        let result = try runPython(tlsProbe, ["\(port)", ca, request], timeout: 30)
        guard let line = result.output.split(separator: "\n").last, let data = line.data(using: .utf8) else {
            throw TLSProbeFailed(output: result.output)
        }
        self = try JSONDecoder().decode(TLSAnswer.self, from: data)
    }
}

/// The log's records once `count` are there, or what it has after `timeout` seconds.
func recorded(_ events: ConnectionEventLog, count: Int, timeout: Double = 15) async -> [ConnectionRecord] {
    let deadline = Date().addingTimeInterval(timeout)
    while events.records(limit: 1000).records.count < count, Date() < deadline {
        try? await Task.sleep(for: .milliseconds(20))
    }
    return events.records(limit: 1000).records
}

struct TLSProbeFailed: Error, CustomStringConvertible {
    let output: String
    var description: String { "the TLS probe printed no result:\n\(output)" }
}

/// curl over TLS: its exit status and its own message.
func curlTLS(_ url: String, _ arguments: [String] = []) throws -> (status: Int32, output: String) {
    let result = try runProgram("curl", ["-sS", "--max-time", "10"] + arguments + [url], timeout: 30)
    return (result.status, result.output)
}

@Suite("TLS in the host: any behaviour, its shapers and its swaps, over TLS")
struct TLSServiceTests {
    @Test("an HTTP behaviour over TLS answers a client trusting the local CA; one that does not is refused and recorded",
          .enabled(if: programExists("curl")))
    func httpOverTLS() async throws {
        let events = try ConnectionEventLog(logger: TestServices.logger)
        let service = try await TestServices.start("http-json", tls: TLSSpec(), events: events)
        defer { Task { await service.stop() } }
        let ca = try TestServices.caCertificate
        let url = "https://localhost:\(service.port)/"
        let trusted = try await offThePool { try curlTLS(url, ["--cacert", ca, "--include"]) }
        #expect(trusted.status == 0, "\(trusted.output)")
        #expect(trusted.output.contains("Hello, World!"))
        let untrusted = try await offThePool { try curlTLS(url) }
        #expect(untrusted.status == 60)
        #expect(untrusted.output.contains("unable to get local issuer certificate"), "\(untrusted.output)")
        // By IP too: the certificate names 127.0.0.1.
        let byAddress = try await offThePool { try curlTLS("https://127.0.0.1:\(service.port)/", ["--cacert", ca]) }
        #expect(byAddress.status == 0, "\(byAddress.output)")

        let records = await recorded(events, count: 3)
        let ends = records.map(\.end.kind)
        #expect(ends.filter { $0 == .tlsFailed }.count == 1, "\(records.map(\.end))")
        let refused = try #require(records.first { $0.end.kind == .tlsFailed })
        #expect(refused.end.endedBy == .peer)
        #expect(refused.client.bytesIn == 0 && refused.client.bytesOut == 0)
        // The bytes counted are the plaintext the behaviour sent (what curl --include shows),
        // not the TLS records that carried them.
        let served = records.filter { $0.end.kind != .tlsFailed }
        #expect(served.count == 2)
        #expect(served.allSatisfy { $0.client.bytesOut == trusted.output.utf8.count }, "\(served.map(\.client.bytesOut)) vs \(trusted.output.utf8.count)")
    }

    @Test("a raw behaviour over TLS: its bytes arrive as plaintext, then the close")
    func rawOverTLS() async throws {
        let service = try await TestServices.start("random", parameters: ["length": "7"], tls: TLSSpec())
        defer { Task { await service.stop() } }
        let ca = try TestServices.caCertificate
        let answer = try await offThePool { try TLSAnswer(port: service.port, ca: ca, request: "") }
        #expect(answer.bytes == 7)
        #expect(answer.end == "eof")
    }

    @Test("reset-after over TLS resets after N plaintext bytes, with no close_notify before the RST")
    func shaperOverTLS() async throws {
        let events = try ConnectionEventLog(logger: TestServices.logger)
        let service = try await TestServices.start("huge", parameters: ["size": "100000"], shapers: ["reset-after:bytes=1000"],
                                                   tls: TLSSpec(), events: events)
        defer { Task { await service.stop() } }
        let ca = try TestServices.caCertificate
        let url = "https://localhost:\(service.port)/"
        let curl = try await offThePool { try curlTLS(url, ["--cacert", ca, "-o", "/dev/null"]) }
        #expect(curl.status == 56, "\(curl.output)")
        #expect(curl.output.contains("Connection reset by peer"), "\(curl.output)")
        // Python's ssl reads what came, then fails (OpenSSL 3 reports an RST under TLS as an EOF
        // in violation of the protocol): never the clean end a close_notify would make.
        let answer = try await offThePool { try TLSAnswer(port: service.port, ca: ca) }
        #expect(answer.end != "eof", "\(answer.end)")
        #expect(answer.bytes <= 1000)
        #expect(answer.text.hasPrefix("HTTP/1.1 200") || answer.bytes == 0)
        let records = await recorded(events, count: 2)
        #expect(records.count == 2)
        for record in records {
            #expect(record.end.kind == .reset)
            #expect(record.end.endedBy == .shaper("reset-after"))
            #expect(record.client.bytesOut == 1000)
        }
    }

    @Test("a TLS service hot-swaps its behaviour like any other: new connections get the new version over TLS")
    func hotSwapOverTLS() async throws {
        let fixture = try await SwapFixture(answeringPlugin(first: "one", second: "-old"), tls: TLSSpec())
        defer { Task { await fixture.stop() } }
        let ca = try TestServices.caCertificate
        let port = fixture.port
        #expect(try await offThePool { try TLSAnswer(port: port, ca: ca, request: "") }.text == "one-old")
        try fixture.install(answeringPlugin(first: "two", second: "-new"))
        let swapped = try await offThePool { () -> Bool in
            let deadline = Date().addingTimeInterval(10)
            while Date() < deadline {
                if (try? TLSAnswer(port: port, ca: ca, request: ""))?.text == "two-new" { return true }
                usleep(20_000)
            }
            return false
        }
        #expect(swapped)
    }

    @Test("ALPN and the TLS versions are the service's settings: the protocol chosen and the version spoken are theirs")
    func alpnAndVersions() async throws {
        let spec = TLSSpec(alpn: ["http/1.1"], maximumVersion: .tls1_2)
        let service = try await TestServices.start("http-json", tls: spec)
        defer { Task { await service.stop() } }
        let ca = try TestServices.caCertificate
        let session = try await offThePool {
            try runProgram("openssl", ["s_client", "-connect", "127.0.0.1:\(service.port)", "-servername", "localhost",
                                       "-CAfile", ca, "-alpn", "h2,http/1.1", "-ign_eof"],
                           input: "GET / HTTP/1.0\r\n\r\n", timeout: 30)
        }
        #expect(session.output.contains("ALPN protocol: http/1.1"), "\(session.output.suffix(800))")
        #expect(session.output.contains("Protocol  : TLSv1.2"), "\(session.output.suffix(800))")
        #expect(session.output.contains("Hello, World!"))
        let tooNew = try await offThePool {
            try runProgram("openssl", ["s_client", "-connect", "127.0.0.1:\(service.port)", "-tls1_3"], input: "", timeout: 30)
        }
        #expect(tooNew.status != 0)
        #expect(tooNew.output.contains("alert protocol version"), "\(tooNew.output.suffix(800))")
    }

    @Test("user certificate files: the chain given is presented; a missing file is one line naming it")
    func userFiles() async throws {
        let folder = TemporaryFolder("cynic-tls-files")
        let made = try runProgram("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                                              "-keyout", folder.file("key.pem"), "-out", folder.file("cert.pem"), "-days", "2",
                                              "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        #expect(made.status == 0, "\(made.output)")
        let spec = TLSSpec(certificateFile: folder.file("cert.pem"), keyFile: folder.file("key.pem"))
        let service = try await TestServices.start("http-json", tls: spec)
        defer { Task { await service.stop() } }
        let answer = try await offThePool { try TLSAnswer(port: service.port, ca: folder.file("cert.pem")) }
        #expect(answer.text.hasPrefix("HTTP/1.1 200 OK"), "\(answer.end) \(answer.text)")

        var missing = spec
        missing.certificateFile = folder.file("absent.pem")
        await #expect {
            _ = try await TestServices.start("http-json", tls: missing)
        } throws: { error in
            let text = "\(error)"
            return text.contains("absent.pem") && !text.contains("\n")
        }
    }
}
