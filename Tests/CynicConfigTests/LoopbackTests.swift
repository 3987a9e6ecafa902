import CynicConfig
import Testing

@Suite("Loopback or not")
struct LoopbackTests {
    @Test("only this machine can connect", arguments: [
        "127.0.0.1", "127.255.0.9", "::1", "0:0:0:0:0:0:0:1", "localhost", "LOCALHOST", "::ffff:127.0.0.1",
    ])
    func loopback(host: String) {
        #expect(ServiceAddress.tcp(host: host, port: 80).isLoopback)
        #expect(ServiceAddress.tcp(host: host, port: 80).beyondLoopbackWarning(for: "service 'x'") == nil)
    }

    @Test("any host that can reach this machine can connect", arguments: [
        "0.0.0.0", "::", "10.0.0.1", "128.0.0.1", "126.255.255.255", "::2", "::ffff:10.0.0.1", "example.com", "localhost.example.com",
    ])
    func beyondLoopback(host: String) {
        #expect(!ServiceAddress.tcp(host: host, port: 80).isLoopback)
    }

    @Test("a Unix socket is local; the warning names the listener, its address and why it matters")
    func unixAndWarning() {
        #expect(ServiceAddress.unix(path: "/tmp/s.sock").isLoopback)
        #expect(ServiceAddress.tcp(host: "::", port: 8080).beyondLoopbackWarning(for: "service 'api'")
                == "service 'api' listens on [::]:8080, beyond loopback: any host that can reach this machine can connect to it")
    }
}
