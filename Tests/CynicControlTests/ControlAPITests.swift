import CynicTestSupport
import Foundation
import Testing

// The control API end to end: the built `cynic serve --api 127.0.0.1:0`, curl as the client,
// and real sockets on the services it makes. Timings have wide margins: the machine is small
// and busy.

@Suite("The control API: services")
struct ControlAPIServiceTests {
    @Test("create a service, change its behaviour while an old connection finishes, delete it: connection refused")
    func lifecycle() throws {
        let api = try CynicWithAPI()
        let created = try api.call("POST", "/services", #"{"name": "slow", "behaviour": "http-slow", "parameters": {"interval_ms": 200}}"#)
        #expect(created.status == 201, "\(created)")
        let port = CynicWithAPI.port(of: created.object)
        #expect(port > 0)
        #expect(created.object["behaviour"] as? String == "http-slow")

        // A connection on the old behaviour: it drips its answer.
        let old = try SocketClient(port: port)
        _ = old.send("GET / HTTP/1.1\r\nHost: cynic\r\n\r\n")
        guard case .bytes = old.receive(timeout: 10) else { Issue.record("no bytes from http-slow"); return }

        let changed = try api.call("PATCH", "/services/slow", #"{"behaviour": "http-json"}"#)
        #expect(changed.status == 200, "\(changed)")
        #expect(CynicWithAPI.port(of: changed.object) == port, "the listener stays")

        // The next connection gets the new behaviour at once...
        let answer = try runProgram("/usr/bin/env", ["curl", "-sS", "--max-time", "10", "http://127.0.0.1:\(port)/"])
        #expect(answer.status == 0 && answer.standardOutput.contains("{"), "\(answer.output)")
        // ...while the old one still drips.
        guard case .bytes = old.receive(timeout: 10) else { Issue.record("the old connection stopped"); return }

        let deleted = try api.call("DELETE", "/services/slow")
        #expect(deleted.status == 204, "\(deleted)")
        #expect(throws: SocketClient.ConnectFailed.self) { try SocketClient(port: port) }
        #expect(try api.call("GET", "/services/slow").status == 404)
        #expect(try api.call("GET", "/services").array.isEmpty)
    }

    @Test("a shaper added to a running proxy applies to the next connection, and is gone once removed")
    func shaperOnARunningProxy() throws {
        let upstream = try UpstreamServer.tcp("echo")
        let api = try CynicWithAPI()
        let proxy = try api.call("POST", "/services", #"{"name": "echo", "behaviour": "proxy", "parameters": {"upstream": "\#(upstream.address)"}}"#)
        #expect(proxy.status == 201, "\(proxy)")
        let port = CynicWithAPI.port(of: proxy.object)
        #expect(try roundTrip(port) < 0.9)

        let added = try api.call("POST", "/services/echo/shapers", #"{"shaper": "latency", "parameters": {"ms": 1000}}"#)
        #expect(added.status == 201, "\(added)")
        #expect(added.object["name"] as? String == "latency")
        #expect(added.object["direction"] as? String == "downstream")
        #expect(try roundTrip(port) >= 0.9)

        let removed = try api.call("DELETE", "/services/echo/shapers/latency")
        #expect(removed.status == 204, "\(removed)")
        #expect(try roundTrip(port) < 0.9)
        #expect(try api.call("GET", "/services/echo/shapers").array.isEmpty)
    }

    @Test("PATCH a shaper merges its parameters; a second unnamed one gets a name of its own")
    func shaperChanges() throws {
        let api = try CynicWithAPI()
        _ = try api.call("POST", "/services", #"{"name": "r", "behaviour": "reset", "shapers": [{"shaper": "latency", "parameters": {"ms": 5, "jitter_ms": 1}}]}"#)
        let patched = try api.call("PATCH", "/services/r/shapers/latency", #"{"probability": 0.5, "parameters": {"ms": 7}}"#)
        #expect(patched.status == 200, "\(patched)")
        #expect(patched.object["probability"] as? Double == 0.5)
        #expect(patched.object["parameters"] as? [String: String] == ["ms": "7", "jitter_ms": "1"])
        let second = try api.call("POST", "/services/r/shapers", #"{"shaper": "latency"}"#)
        #expect(second.object["name"] as? String == "latency-2", "\(second)")
        let clash = try api.call("POST", "/services/r/shapers", #"{"shaper": "latency", "name": "latency"}"#)
        #expect(clash.status == 409, "\(clash)")
    }

    @Test("enabled false: connection refused, the open connection goes on; enabled true: the same port again")
    func disableAndEnable() throws {
        let api = try CynicWithAPI()
        let created = try api.call("POST", "/services", #"{"name": "quiet", "behaviour": "noresponse"}"#)
        let port = CynicWithAPI.port(of: created.object)
        let open = try SocketClient(port: port)
        let disabled = try api.call("PATCH", "/services/quiet", #"{"enabled": false}"#)
        #expect(disabled.object["enabled"] as? Bool == false, "\(disabled)")
        #expect(throws: SocketClient.ConnectFailed.self) { try SocketClient(port: port) }
        #expect(open.receive(timeout: 0.5) == .timedOut, "the open connection is left alone")
        let enabled = try api.call("PATCH", "/services/quiet", #"{"enabled": true}"#)
        #expect(CynicWithAPI.port(of: enabled.object) == port, "\(enabled)")
        _ = try SocketClient(port: port)
    }

    @Test("reset: back to the command line's services, those created through the API gone")
    func resetToConfiguration() throws {
        let port = freePort()
        let api = try CynicWithAPI(["reset", "--port", String(port)])
        let extra = try api.call("POST", "/services", #"{"name": "extra", "behaviour": "noresponse"}"#)
        let extraPort = CynicWithAPI.port(of: extra.object)
        _ = try api.call("PATCH", "/services/reset", #"{"behaviour": "noresponse"}"#)
        _ = try api.call("PATCH", "/services/reset", #"{"enabled": false}"#)

        let reset = try api.call("POST", "/configuration/reset")
        #expect(reset.status == 200, "\(reset)")
        #expect(reset.array.map { $0["name"] as? String } == ["reset"])
        #expect(reset.array.first?["behaviour"] as? String == "reset")
        #expect(reset.array.first?["enabled"] as? Bool == true)
        #expect(throws: SocketClient.ConnectFailed.self) { try SocketClient(port: extraPort) }
        let client = try SocketClient(port: port)
        _ = client.send("hello")
        #expect(client.receive(timeout: 10) == .failed(errno: ECONNRESET))
    }

    @Test("reset with a configuration file: the file as it is now, read again")
    func resetRereadsTheFile() throws {
        let folder = TemporaryFolder()
        let (first, second) = (freePort(), freePort())
        let file = try folder.write("cynic.yaml", "services:\n  a:\n    behaviour: reset\n    port: \(first)\n")
        let api = try CynicWithAPI(["-c", file, "--no-log-sink"], command: [])
        #expect(try api.call("GET", "/services").array.map { $0["name"] as? String } == ["a"])
        _ = try api.call("DELETE", "/services/a")
        try folder.write("cynic.yaml", "services:\n  b:\n    behaviour: noresponse\n    port: \(second)\n")
        let reset = try api.call("POST", "/configuration/reset")
        #expect(reset.array.map { $0["name"] as? String } == ["b"], "\(reset)")
        #expect(CynicWithAPI.port(of: reset.array.first ?? [:]) == second)
        _ = try SocketClient(port: second)
        #expect(throws: SocketClient.ConnectFailed.self) { try SocketClient(port: first) }
        // A file that no longer reads is refused whole, named, and nothing changes.
        try folder.write("cynic.yaml", "services: [")
        let broken = try api.call("POST", "/configuration/reset")
        #expect(broken.status == 400 && (broken.object["error"] as? String ?? "").contains("cynic.yaml"), "\(broken)")
        #expect(try api.call("GET", "/services").array.map { $0["name"] as? String } == ["b"])
    }

    @Test("bad requests: a 4xx whose JSON names the field, and cynic serves on")
    func badRequests() throws {
        let api = try CynicWithAPI()
        let cases: [(String, String, String?, Int, String?)] = [
            ("POST", "/services", #"{"behaviour": "reset"}"#, 400, "name"),
            ("POST", "/services", #"{"name": "a", "behaviour": "rest"}"#, 400, "behaviour"),
            ("POST", "/services", #"{"name": "a", "behaviour": "reset", "paramters": {}}"#, 400, "paramters"),
            ("POST", "/services", #"{"name": "a", "behaviour": "http-slow", "parameters": {"interval_ms": "soon"}}"#, 400, "parameters.interval_ms"),
            ("POST", "/services", #"{"name": "a", "behaviour": "reset", "shapers": [{"shaper": "latency", "probability": 2}]}"#, 400, "shapers[0].probability"),
            ("POST", "/services", #"{"name": "a", "behaviour": "reset", "shapers": [{"shaper": "lag"}]}"#, 400, "shapers[0].shaper"),
            ("POST", "/services", #"{"name": "a", "behaviour": "reset", "listen": "127.0.0.1:99999"}"#, 400, "listen"),
            ("POST", "/services", #"{"name": "a", "behaviour": "reset", "enabled": null}"#, 400, "enabled"),
            ("POST", "/services", "not json", 400, nil),
            ("POST", "/services", nil, 400, nil),
            ("POST", "/proxies", #"{"name": "p", "upstream": "a b:80"}"#, 400, nil),
            ("POST", "/proxies", #"{"name": "p", "upstream": "h:+80"}"#, 400, nil),
            ("POST", "/proxies", #"{"name": "p", "upstream": "unix:relative"}"#, 400, nil),
            ("PATCH", "/services/none", #"{"enabled": true}"#, 404, nil),
            ("GET", "/nothing-here", nil, 404, nil),
            ("PUT", "/services", "{}", 405, nil),
        ]
        for (method, path, body, status, field) in cases {
            let answer = try api.call(method, path, body)
            #expect(answer.status == status, "\(method) \(path) \(body ?? ""): \(answer)")
            #expect(answer.object["status"] as? Int == status, "\(answer)")
            #expect(!(answer.object["error"] as? String ?? "").isEmpty, "\(answer)")
            if let field { #expect(answer.object["field"] as? String == field, "\(method) \(path) \(body ?? ""): \(answer)") }
        }
        // A taken address is a conflict, named.
        let holder = try api.call("POST", "/services", #"{"name": "holder", "behaviour": "noresponse"}"#)
        let taken = try api.call("POST", "/services", #"{"name": "b", "behaviour": "reset", "listen": "\#(holder.object["listen"] as? String ?? "")"}"#)
        #expect(taken.status == 409 && taken.object["field"] as? String == "listen", "\(taken)")
        #expect(try api.call("POST", "/services", #"{"name": "holder", "behaviour": "reset"}"#).status == 409)
        #expect(try api.call("GET", "/services").array.count == 1, "nothing else was made")
        #expect(api.cynic.process.isRunning)
    }

    @Test("a token: refused without it, served with it; beyond loopback cynic will not start without one")
    func token() throws {
        let api = try CynicWithAPI(["--api-token", "s3cret"])
        let refused = try api.call("GET", "/services")
        #expect(refused.status == 401, "\(refused)")
        #expect(try api.call("GET", "/services", headers: ["Authorization: Bearer s3cret"]).status == 200)
        #expect(try api.call("GET", "/services", headers: ["Authorization: Bearer wrong"]).status == 401)

        let open = try CynicProcess(["serve", "--api", "0.0.0.0:0"])
        #expect(open.waitForExit(timeout: 30) != 0)
        #expect(open.standardError.contains("give it a token with --api-token or --api-token-file"), "\(open.standardError)")
    }
}

/// Seconds from sending a line through `port` to its echo.
func roundTrip(_ port: Int) throws -> Double {
    let client = try SocketClient(port: port)
    let clock = ContinuousClock()
    let start = clock.now
    _ = client.send("ping\n")
    guard case .bytes = client.receive(timeout: 15) else { throw RoundTripFailed() }
    let elapsed = clock.now - start
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
}

struct RoundTripFailed: Error {}
