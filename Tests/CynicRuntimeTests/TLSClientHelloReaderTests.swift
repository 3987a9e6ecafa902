import Testing
import TLSClientHello

/// A reader on the heap (it holds 16 KiB), fed as a connection feeds it.
private final class Reader {
    let pointer = UnsafeMutablePointer<tls_hello_reader>.allocate(capacity: 1)

    init() { tls_hello_reader_init(pointer) }
    deinit { pointer.deallocate() }

    @discardableResult
    func read(_ bytes: [UInt8]) -> tls_hello_status {
        bytes.withUnsafeBufferPointer { tls_hello_read(pointer, $0.baseAddress, $0.count) }
    }

    var reason: String? { pointer.pointee.reason.map { String(cString: $0) } }
    var hello: tls_client_hello { pointer.pointee.hello }
    var sessionID: [UInt8] {
        withUnsafeBytes(of: pointer.pointee.hello.session_id) { Array($0.prefix(Int(hello.session_id_length))) }
    }
    var suites: [UInt16] {
        var hello = self.hello
        return (0..<hello.cipher_suite_count).map { tls_hello_cipher_suite(&hello, $0) }
    }
}

/// ClientHellos as bytes, for the reader and for the fault plugins' wire tests.
enum ClientHelloBytes {
    static func u16(_ value: Int) -> [UInt8] { [UInt8(value >> 8 & 0xff), UInt8(value & 0xff)] }
    static func u24(_ value: Int) -> [UInt8] { [UInt8(value >> 16 & 0xff)] + u16(value) }

    /// A ClientHello handshake message (type 1, 3-byte length, body) as a TLS 1.3 client sends it.
    static func message(version: Int = 0x0303, sessionID: [UInt8] = Array(1...32), suites: [Int] = [0x1302, 0xc02f, 0x00ff],
                        extensions: [UInt8]? = nil, padding: Int = 0) -> [UInt8] {
        // supported_groups (x25519), then a padding extension of `padding` bytes (RFC 7685).
        let extensions = extensions ?? (u16(0x000a) + u16(4) + u16(2) + u16(0x001d) + u16(0x0015) + u16(padding)
            + Array(repeating: 0, count: padding))
        let body = u16(version) + Array(repeating: 0xaa, count: 32) + [UInt8(sessionID.count)] + sessionID
            + u16(2 * suites.count) + suites.flatMap(u16) + [1, 0] + u16(extensions.count) + extensions
        return [1] + u24(body.count) + body
    }

    /// `message` in handshake records of at most `size` bytes of payload each.
    static func records(_ message: [UInt8], size: Int = 16384, version: Int = 0x0301) -> [UInt8] {
        stride(from: 0, to: message.count, by: size).flatMap { start in
            let fragment = message[start..<min(start + size, message.count)]
            return [0x16] + u16(version) + u16(fragment.count) + fragment
        }
    }
}

private typealias Hello = ClientHelloBytes

@Suite("The TLS fault plugins' ClientHello reader")
struct TLSClientHelloReaderTests {
    @Test("a ClientHello in one piece: its versions, session id and cipher suites")
    func whole() {
        let reader = Reader()
        #expect(reader.read(Hello.records(Hello.message())) == TLS_HELLO_COMPLETE)
        #expect(reader.hello.record_version == 0x0301)
        #expect(reader.hello.legacy_version == 0x0303)
        #expect(reader.sessionID == Array(1...32))
        #expect(reader.suites == [0x1302, 0xc02f, 0x00ff])
        #expect(reader.reason == nil)
    }

    @Test("a byte at a time: more is needed until the last byte, then it is complete")
    func byteByByte() {
        let bytes = Hello.records(Hello.message())
        let reader = Reader()
        for byte in bytes.dropLast() {
            #expect(reader.read([byte]) == TLS_HELLO_NEED_MORE)
        }
        #expect(reader.read([bytes.last!]) == TLS_HELLO_COMPLETE)
        #expect(reader.suites == [0x1302, 0xc02f, 0x00ff])
    }

    @Test("one ClientHello across several records, in pieces that cut headers", arguments: [1, 3, 5, 7, 100, 4096])
    func acrossRecords(piece: Int) {
        let message = Hello.message(sessionID: [], padding: 9000)
        let bytes = Hello.records(message, size: 1000)
        let reader = Reader()
        var status = TLS_HELLO_NEED_MORE
        for start in stride(from: 0, to: bytes.count, by: piece) {
            #expect(status == TLS_HELLO_NEED_MORE, "complete before byte \(start) of \(bytes.count)")
            status = reader.read(Array(bytes[start..<min(start + piece, bytes.count)]))
        }
        #expect(status == TLS_HELLO_COMPLETE, "\(reader.reason ?? "")")
        #expect(reader.sessionID.isEmpty)
        #expect(reader.suites.first == 0x1302)
    }

    @Test("bytes after the ClientHello are ignored, and the result stays")
    func after() {
        let reader = Reader()
        #expect(reader.read(Hello.records(Hello.message()) + [0x14, 0x03, 0x03, 0x00, 0x01, 0x01]) == TLS_HELLO_COMPLETE)
        #expect(reader.read(Array("GET / HTTP/1.1\r\n".utf8)) == TLS_HELLO_COMPLETE)
        #expect(reader.suites.count == 3)
    }

    @Test("a plain HTTP request is not TLS from its first byte")
    func plainHTTP() {
        let reader = Reader()
        #expect(reader.read(Array("G".utf8)) == TLS_HELLO_NOT_TLS)
        #expect(reader.reason == "not a TLS handshake record")
        #expect(reader.read(Hello.records(Hello.message())) == TLS_HELLO_NOT_TLS)
    }

    @Test("what is not a ClientHello says why", arguments: [
        ([0x16, 0x47], "record version is not 3.x"),
        ([0x16, 0x03, 0x01, 0x00, 0x00], "empty handshake record"),
        ([0x16, 0x03, 0x01, 0x40, 0x01], "record longer than 2^14 bytes"),
        ([0x16, 0x03, 0x01, 0x00, 0x04, 0x02, 0x00, 0x00, 0x00], "a handshake message that is not a ClientHello"),
        ([0x16, 0x03, 0x01, 0x00, 0x04, 0x01, 0x00, 0x40, 0x00], "ClientHello longer than the 16 KiB this reader keeps"),
        ([0x16, 0x03, 0x01, 0x00, 0x04, 0x01, 0x00, 0x00, 0x00], "ClientHello shorter than its fixed fields"),
        ([0x80, 0x2e, 0x01, 0x03, 0x01], "not a TLS handshake record"), // an SSLv2-style hello
    ] as [([UInt8], String)])
    func refused(bytes: [UInt8], reason: String) {
        let reader = Reader()
        #expect(reader.read(bytes) == TLS_HELLO_NOT_TLS)
        #expect(reader.reason == reason)
    }

    @Test("lengths inside the ClientHello that do not add up", arguments: [
        (Hello.message(sessionID: Array(repeating: 1, count: 33)), "session id longer than 32 bytes"),
        (Hello.message(suites: []), "cipher suite list empty or of odd length"),
        (Hello.message(version: 0x0203), "ClientHello version is not 3.x"),
        (Hello.message(extensions: Hello.u16(0x000a) + Hello.u16(9) + [0, 0]), "extension lengths do not add up"),
    ])
    func malformed(message: [UInt8], reason: String) {
        let reader = Reader()
        #expect(reader.read(Hello.records(message)) == TLS_HELLO_NOT_TLS)
        #expect(reader.reason == reason)
    }

    @Test("a record of another type in the middle of a ClientHello ends it")
    func interleaved() {
        let bytes = Hello.records(Hello.message(), size: 50)
        let reader = Reader()
        #expect(reader.read(Array(bytes.prefix(55))) == TLS_HELLO_NEED_MORE)
        #expect(reader.read([0x17, 0x03, 0x03, 0x00, 0x01, 0x00]) == TLS_HELLO_NOT_TLS)
        #expect(reader.reason == "a record that is not a handshake inside the ClientHello")
    }

    @Test("every prefix needs more, and no single changed byte breaks the reader")
    func mutations() {
        let bytes = Hello.records(Hello.message(), size: 60)
        for cut in 0..<bytes.count {
            #expect(Reader().read(Array(bytes.prefix(cut))) == TLS_HELLO_NEED_MORE)
        }
        for index in bytes.indices {
            for value: UInt8 in [0x00, 0x01, 0x7f, 0xff] {
                var changed = bytes
                changed[index] = value
                let reader = Reader()
                let status = reader.read(changed)
                #expect([TLS_HELLO_NEED_MORE, TLS_HELLO_COMPLETE, TLS_HELLO_NOT_TLS].contains(status))
                #expect((status == TLS_HELLO_NOT_TLS) == (reader.reason != nil))
            }
        }
    }
}
