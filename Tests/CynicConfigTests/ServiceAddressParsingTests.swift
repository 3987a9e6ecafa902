import CynicConfig
import Testing

@Suite("Addresses as the API writes them")
struct ServiceAddressParsingTests {
    @Test("HOST:PORT, [IPv6]:PORT, :PORT, unix:/path", arguments: [
        ("127.0.0.1:0", ServiceAddress.tcp(host: "127.0.0.1", port: 0)),
        ("localhost:8080", .tcp(host: "localhost", port: 8080)),
        ("[::1]:9", .tcp(host: "::1", port: 9)),
        (":7000", .tcp(host: "127.0.0.1", port: 7000)),
        ("unix:/tmp/x.sock", .unix(path: "/tmp/x.sock")),
    ])
    func parses(text: String, address: ServiceAddress) throws {
        #expect(try ServiceAddress.parse(text).get() == address)
    }

    @Test("what is refused, with why", arguments: ["127.0.0.1", "127.0.0.1:65536", "::1:80", "[::1:80", "unix:relative", "host:-1", "a b:1"])
    func refuses(text: String) {
        #expect(throws: AddressError.self) { try ServiceAddress.parse(text).get() }
    }
}
