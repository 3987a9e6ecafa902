import CynicTestSupport
import Foundation
import Testing

/// `cynic check`: a plugin file loaded as the server would, run once against a client of its own.
@Suite("cynic check")
struct CheckTests {
    /// The timeline lines of cynic's side: (seconds since connect, what).
    static func cynicLines(_ output: String) -> [(time: Double, text: String)] {
        output.split(separator: "\n").compactMap { line in
            let words = line.split(separator: " ", maxSplits: 2)
            guard words.count == 3, words[1] == "cynic", let time = Double(words[0]) else { return nil }
            return (time, String(words[2].drop { $0 == " " }))
        }
    }

    @Test("http-slow: the descriptor, the head sent, one-byte sends with waits of interval_ms between, a FIN")
    func httpSlow() throws {
        let folder = TemporaryFolder()
        let body = try folder.write("body.txt", "abc")
        let result = try runProgram(Paths.cynic, ["check", Paths.shippedPlugin("http-slow"),
                                                  "--param", "interval_ms=50", "--param", "body_file=\(body)"])
        #expect(result.status == 0, "\(result.output)")
        let output = result.standardOutput
        #expect(output.hasPrefix("http-slow — "), "\(output)")
        #expect(output.contains("\n    param interval_ms: uint32_t, default 30000 — "))
        #expect(output.contains("running http-slow once on 127.0.0.1:"))
        #expect(output.contains(#"client  sent 60 bytes  "GET / HTTP/1.1\r\nHost: 127.0.0.1:"#), "\(output)")

        let lines = Self.cynicLines(output)
        let actions = lines.map(\.text).filter { !$0.hasPrefix("then ") }
        #expect(actions.count == 10, "\(output)")
        try #require(actions.count >= 10)
        #expect(actions[0].hasPrefix("accepted the connection from 127.0.0.1:"))
        #expect(actions[1] == "received the request GET /")
        #expect(actions[2].hasPrefix(#"send 97 bytes  "HTTP/1.1 200 OK\r\n"#), "\(actions[2])")
        #expect([actions[3], actions[5], actions[7], actions[8], actions[9]]
                == [#"send 1 byte  "a""#, #"send 1 byte  "b""#, #"send 1 byte  "c""#, "close (FIN)",
                    "connection ended: closed by cynic (FIN)"])
        // Byte n is due n × interval_ms after byte 0: each wait is what is left of its interval
        // once the previous byte is out (50 ms at most).
        for wait in [actions[4], actions[6]] {
            let milliseconds = wait.hasPrefix("wait ") && wait.hasSuffix(" ms") ? Int(wait.dropFirst(5).dropLast(3)) : nil
            #expect(milliseconds.map { (0...50).contains($0) } == true, "\(wait)")
        }
        // The waits are real: the last byte goes out 100 ms after the first.
        let sends = lines.filter { $0.text.hasPrefix("send 1 byte") }.map(\.time)
        #expect(sends.count == 3 && sends[2] - sends[0] >= 0.095, "\(output)")
        #expect(output.contains("\nended: closed by cynic with FIN after "), "\(output)")
        #expect(output.hasSuffix("; the client received 100 bytes\n"), "\(output)")
    }

    @Test("reset: the wait for the client's bytes, then a reset the client sees")
    func reset() throws {
        let result = try runProgram(Paths.cynic, ["check", Paths.shippedPlugin("reset")])
        #expect(result.status == 0, "\(result.output)")
        let actions = Self.cynicLines(result.standardOutput).map(\.text)
        #expect(Array(actions.dropFirst()) == ["wait 200 ms", "reset (RST)", "connection ended: reset by cynic (RST)"],
                "\(result.output)")
        #expect(result.standardOutput.contains("client  receive failed: connection reset (ECONNRESET)"))
        #expect(result.standardOutput.contains("\nended: reset by cynic (RST) after "))
    }

    @Test("a connection still open after --seconds: the client closes it")
    func stillOpen() throws {
        let result = try runProgram(Paths.cynic, ["check", Paths.shippedPlugin("noresponse"), "--seconds", "0.5"])
        #expect(result.status == 0, "\(result.output)")
        #expect(result.standardOutput.contains("client  still open after 0.5 s: the client closes it"), "\(result.output)")
        #expect(result.standardOutput.contains("\nended: still open after 0.5 s; closed by the client; the client received 0 bytes\n"))
    }

    @Test("a shaper: its descriptor, and that check runs behaviours; exit 0")
    func shaper() throws {
        let result = try runProgram(Paths.cynic, ["check", Paths.shippedPlugin("latency")])
        #expect(result.status == 0, "\(result.output)")
        #expect(result.standardOutput.hasPrefix("latency — "))
        #expect(result.standardOutput.contains("latency is a shaper: `cynic check` runs behaviours."))
    }

    @Test("a file that is not a plugin: the refusal line, exit 1")
    func garbage() throws {
        let folder = TemporaryFolder()
        let file = try folder.write("broken.so", "not an ELF file")
        let result = try runProgram(Paths.cynic, ["check", file])
        #expect(result.status == 1)
        #expect(result.standardError.hasPrefix("cynic: refused plugin \(file): not a loadable shared object: "), "\(result.output)")
        #expect(result.standardError.split(separator: "\n").count == 1, "\(result.output)")
        #expect(result.standardOutput.isEmpty)
    }

    @Test("parameters refused by cynic or by the plugin: one line naming it, exit 1", arguments: [
        ("http-slow", "interval_ms=abc", "--param interval_ms: service 'http-slow': parameter 'interval_ms' of 'http-slow' expects an unsigned 32-bit integer"),
        ("http-slow", "speed=3", "--param speed: service 'http-slow': unknown parameter 'speed' for behaviour 'http-slow'"),
        ("http-json", "body_file=/nonexistent/x.json", "behaviour 'http-json' refused its parameters: body_file \"/nonexistent/x.json\""),
        ("tls-alert", "alert=nope", "behaviour 'tls-alert' refused its parameters: unknown alert \"nope\": use a number 0-255 or one of close_notify, "),
        ("tls-truncated", "bytes=79", "behaviour 'tls-truncated' refused its parameters: `bytes` must be less than 79"),
    ])
    func badParameter(plugin: String, parameter: String, message: String) throws {
        let result = try runProgram(Paths.cynic, ["check", Paths.shippedPlugin(plugin), "--param", parameter])
        #expect(result.status == 1)
        #expect(result.standardError.contains(message), "\(result.output)")
        #expect(result.standardError.split(separator: "\n").count == 1, "\(result.output)")
        #expect(!result.standardOutput.contains("running "))
    }
}
