import CynicRuntime
import CynicTestSupport
import Foundation
import Testing
import TLSClientHello

/// Every committed input of the runtime's fuzz targets: HTTP requests (fuzz/corpus/http-request)
/// through a real HTTP service's pipeline over a socket, ClientHellos (fuzz/corpus/tls-client-hello)
/// through the TLS fault plugins' reader.
@Suite("The runtime's fuzz corpora")
struct FuzzCorpusTests {
    @Test("each http-request input is answered or closed by http-json, which serves on")
    func httpRequests() async throws {
        let names = FuzzCorpus.names("http-request")
        #expect(names.count >= 10)
        let service = try await TestServices.start("http-json")
        var answered = 0
        for name in names {
            let client = try SocketClient(port: service.port)
            client.send(try FuzzCorpus.bytes("http-request", name))
            client.shutdownWrite()
            let (bytes, end) = client.receiveAll(timeout: 20)
            #expect(end != .timedOut, "\(name): no end after 20 s")
            if !bytes.isEmpty {
                #expect(String(decoding: bytes.prefix(9), as: UTF8.self) == "HTTP/1.1 ", "\(name)")
                answered += 1
            }
        }
        // The seeds are what curl and Python send: each is answered.
        #expect(answered >= 10)
        let after = try SocketClient(port: service.port)
        after.send("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        #expect(String(decoding: after.receiveAll(timeout: 20).bytes, as: UTF8.self).hasPrefix("HTTP/1.1 200 "))
        await service.stop()
    }

    @Test("each tls-client-hello input ends the same whole or a byte at a time; a refusal has a reason")
    func clientHellos() throws {
        let names = FuzzCorpus.names("tls-client-hello")
        #expect(names.count >= 5)
        let whole = UnsafeMutablePointer<tls_hello_reader>.allocate(capacity: 1)
        let bytewise = UnsafeMutablePointer<tls_hello_reader>.allocate(capacity: 1)
        defer { whole.deallocate(); bytewise.deallocate() }
        var complete = 0
        for name in names {
            let bytes = try FuzzCorpus.bytes("tls-client-hello", name)
            tls_hello_reader_init(whole)
            tls_hello_reader_init(bytewise)
            let status = bytes.withUnsafeBufferPointer { tls_hello_read(whole, $0.baseAddress, $0.count) }
            for byte in bytes { _ = withUnsafePointer(to: byte) { tls_hello_read(bytewise, $0, 1) } }
            #expect(bytewise.pointee.status == status, "\(name)")
            if status == TLS_HELLO_NOT_TLS {
                #expect(whole.pointee.reason.map { String(cString: $0) }?.isEmpty == false, "\(name)")
            }
            if status == TLS_HELLO_COMPLETE {
                complete += 1
                #expect(whole.pointee.hello.cipher_suite_count > 0, "\(name)")
            }
        }
        // Those captured from openssl, curl and Python are whole ClientHellos.
        #expect(complete >= 5)
    }
}
