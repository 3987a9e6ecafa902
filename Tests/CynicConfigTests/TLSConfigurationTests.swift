import CynicConfig
import CynicPlugins
import Testing

@Suite("TLS in the configuration file")
struct TLSConfigurationTests {
    static func tls(_ entry: String) throws -> TLSSpec? {
        try Configuration.parse(yaml: "services:\n  a:\n    behaviour: http-json\n    port: 1\n    tls: \(entry)\n", file: "f.yaml")
            .services[0].tls
    }

    @Test("a profile's name, true or false, or a mapping of every setting")
    func forms() throws {
        #expect(try Self.tls("expired") == TLSSpec(profile: "expired"))
        #expect(try Self.tls("true") == TLSSpec())
        #expect(try Self.tls("false") == nil)
        #expect(try Self.tls("{profile: tls1.0-only, alpn: [h2, http/1.1], min_version: '1.0', max_version: '1.2', names: [a.test, 127.0.0.2]}")
                == TLSSpec(profile: "tls1.0-only", alpn: ["h2", "http/1.1"], minimumVersion: .tls1_0, maximumVersion: .tls1_2,
                           names: ["a.test", "127.0.0.2"]))
        #expect(try Self.tls("{certificate: /c.pem, key: /k.pem, alpn: http/1.1}")
                == TLSSpec(certificateFile: "/c.pem", keyFile: "/k.pem", alpn: ["http/1.1"]))
    }

    @Test("each mistake is one line naming the key", arguments: [
        ("{profile: valid, certificate: /c.pem, key: /k.pem}", "services.a.tls: give either `profile` or `certificate` and `key`, not both"),
        ("{certificate: /c.pem}", "services.a.tls: `certificate` needs its `key`"),
        ("{min_version: '1.4'}", "services.a.tls.min_version: expected 1.0, 1.1, 1.2 or 1.3, got '1.4'"),
        ("{min_version: '1.3', max_version: '1.2'}", "services.a.tls.min_version: 1.3 is above max_version 1.2"),
        ("{names: ['bad name']}", "services.a.tls.names[0]: expected a DNS name or an IP address, got 'bad name'"),
        ("{alpn: ['']}", "services.a.tls.alpn[0]: expected a non-empty string"),
        ("{ciphers: x}", "services.a.tls: unknown key 'ciphers'"),
    ])
    func errors(entry: String, message: String) {
        let error = #expect(throws: ConfigurationError.self) { try Self.tls(entry) }
        #expect(error?.description.contains(message) == true, "\(error.map { "\($0)" } ?? "no error")")
        #expect(error?.description.contains("\n") == false)
    }

    @Test("a dump writes the TLS settings out, and reads back the same")
    func dump() throws {
        let spec = TLSSpec(profile: "wrong-host", alpn: ["http/1.1"], maximumVersion: .tls1_2, names: ["x.test"])
        let configuration = Configuration(services: [
            ServiceSpec(name: "a", behaviour: "http-json", address: .tcp(host: "127.0.0.1", port: 1), tls: spec, origin: "t"),
        ])
        let parsed = try Configuration.parse(yaml: configuration.yaml(plugins: [:]), file: "dump.yaml")
        #expect(parsed.services[0].tls == spec)
    }
}
