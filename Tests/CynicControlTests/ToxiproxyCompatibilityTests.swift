import CynicTestSupport
import Foundation
import Testing

// toxiproxy's API as its clients meet it: toxiproxy's own Python client from PyPI
// (toxiproxy-python), the HTTP calls of toxiproxy's README against a real Redis, and the API
// staying responsive while toxics come and go under streaming load (toxiproxy #159, #210).

private let toxiproxyPythonInstalled = (try? runPython("import toxiproxy"))?.status == 0
private let inCI = ProcessInfo.processInfo.environment["CI"] == "true"
/// toxiproxy's own command-line client (Go), built by hand from toxiproxy's source: nothing of
/// it is in this repository, so the test runs where `TOXIPROXY_CLI` names one.
private let toxiproxyCLI = ProcessInfo.processInfo.environment["TOXIPROXY_CLI"]

@Suite("toxiproxy's API, driven by toxiproxy's clients")
struct ToxiproxyCompatibilityTests {
    @Test("toxiproxy-python drives cynic through its documented calls", .enabled(if: toxiproxyPythonInstalled || inCI))
    func toxiproxyPython() throws {
        let upstream = try UpstreamServer.tcp("echo")
        let api = try CynicWithAPI()
        let port = try #require(Int(api.url.split(separator: ":").last ?? ""))
        let result = try runPython("""
            import socket, sys, time
            from toxiproxy import Toxiproxy
            from toxiproxy.api import APIConsumer
            from toxiproxy.exceptions import ProxyExists, NotFound
            APIConsumer.port = int(sys.argv[1])
            upstream = sys.argv[2]

            def round_trip(proxy):
                host, port = proxy.listen.rsplit(":", 1)
                with socket.create_connection((host, int(port)), timeout=10) as s:
                    start = time.monotonic()
                    s.sendall(b"ping")
                    assert s.recv(10) == b"ping"
                    return time.monotonic() - start

            server = Toxiproxy()
            assert server.running()
            assert b"cynic" in server.version()
            proxy = server.create(upstream=upstream, name="echo")
            assert proxy.listen.startswith("127.0.0.1:") and not proxy.listen.endswith(":0"), proxy.listen
            assert round_trip(proxy) < 0.5
            try:
                server.create(upstream=upstream, name="echo")
                raise AssertionError("created twice")
            except ProxyExists:
                pass

            proxy.add_toxic(type="latency", attributes={"latency": 600, "jitter": 0})
            toxics = proxy.toxics()
            assert list(toxics) == ["latency_downstream"], toxics
            toxic = toxics["latency_downstream"]
            assert toxic.type == "latency" and toxic.stream == "downstream" and toxic.attributes["latency"] == 600, vars(toxic)
            assert round_trip(proxy) >= 0.55
            proxy.destroy_toxic("latency_downstream")
            assert proxy.toxics() == {}
            assert round_trip(proxy) < 0.5

            with proxy.down():
                try:
                    round_trip(proxy)
                    raise AssertionError("still accepting while down")
                except ConnectionRefusedError:
                    pass
            assert round_trip(proxy) < 0.5

            proxy.add_toxic(type="timeout", name="cut", stream="upstream", toxicity=1.0, attributes={"timeout": 100})
            server.reset()
            assert server.get_proxy("echo").enabled
            assert proxy.toxics() == {}

            populated = server.populate([{"name": "second", "upstream": upstream, "listen": "127.0.0.1:0"}])
            assert [p.name for p in populated] == ["second"]
            assert sorted(server.proxies()) == ["echo", "second"]
            server.destroy_all()
            assert server.proxies() == {}
            try:
                proxy.toxics()
                raise AssertionError("toxics of a deleted proxy")
            except NotFound:
                pass
            print("ok")
            """, [String(port), upstream.address])
        #expect(result.status == 0 && result.standardOutput.contains("ok"), "\(result.output)\n\(api.cynic.standardError)")
    }

    @Test("a toxic applies to the connections already open, as toxiproxy's do; a shaper through cynic's own API waits for the next one")
    func toxicsOnOpenConnections() throws {
        let upstream = try UpstreamServer.tcp("echo")
        let api = try CynicWithAPI()
        let created = try api.call("POST", "/proxies", #"{"name": "pool", "listen": "127.0.0.1:0", "upstream": "\#(upstream.address)"}"#)
        let open = try SocketClient(port: CynicWithAPI.port(of: created.object))
        #expect(try echo(open) < 0.9)
        // A toxic, downstream then upstream: the pooled connection slows down at once.
        _ = try api.call("POST", "/proxies/pool/toxics", #"{"type": "latency", "attributes": {"latency": 1000}}"#)
        #expect(try echo(open) >= 0.9)
        _ = try api.call("DELETE", "/proxies/pool/toxics/latency_downstream")
        #expect(try echo(open) < 0.9)
        _ = try api.call("POST", "/proxies/pool/toxics", #"{"type": "latency", "stream": "upstream", "attributes": {"latency": 1000}}"#)
        #expect(try echo(open) >= 0.9, "an upstream toxic reaches the open upstream connection")
        let reset = try api.call("POST", "/reset")
        #expect(reset.status == 204)
        #expect(try echo(open) < 0.9, "/reset takes every toxic off the open connections too")
        // cynic's own API: the next connection, not this one.
        _ = try api.call("POST", "/services/pool/shapers", #"{"shaper": "latency", "parameters": {"ms": 1000, "mode": "per-chunk"}}"#)
        #expect(try echo(open) < 0.9)
        #expect(try roundTrip(CynicWithAPI.port(of: created.object)) >= 0.9)
    }

    @Test("a latency toxic deleted or changed while it holds bytes lets them go at once, both streams (found by bench/soak.py)",
          arguments: ["downstream", "upstream"], ["DELETE", "PATCH"])
    func toxicTakenOffWhileHolding(stream: String, change: String) throws {
        let upstream = try UpstreamServer.tcp("echo")
        let api = try CynicWithAPI()
        let created = try api.call("POST", "/proxies", #"{"name": "held", "listen": "127.0.0.1:0", "upstream": "\#(upstream.address)"}"#)
        let open = try SocketClient(port: CynicWithAPI.port(of: created.object))
        #expect(try echo(open) < 0.9)
        _ = try api.call("POST", "/proxies/held/toxics",
                         #"{"type": "latency", "name": "slow", "stream": "\#(stream)", "attributes": {"latency": 8000}}"#)
        let clock = ContinuousClock()
        let sent = clock.now
        _ = open.send("ping\n")
        Thread.sleep(forTimeInterval: 0.3)  // the line is held by the toxic now
        let taken = change == "DELETE"
            ? try api.call("DELETE", "/proxies/held/toxics/slow")
            : try api.call("PATCH", "/proxies/held/toxics/slow", #"{"attributes": {"latency": 0}}"#)
        #expect(taken.status == (change == "DELETE" ? 204 : 200), "\(taken)")
        // Held bytes dropped with the toxic would never come (the client would wait for ever);
        // kept to their due time they would come after 8 s.
        let answer = open.receive(timeout: 15)
        let waited = clock.now - sent
        #expect(answer == .bytes(Array("ping\n".utf8)), "\(answer)")
        #expect(waited < .seconds(4), "the held line came \(waited) after it was sent, with the toxic taken off at 0.3 s")
        #expect(try echo(open) < 0.9, "the connection goes on without the toxic")
    }

    @Test("the README's toxiproxy session, as HTTP calls, in front of a real Redis", .enabled(if: RedisServer.isInstalled || inCI))
    func readmeSessionWithRedis() throws {
        let redis = try RedisServer.start()
        let api = try CynicWithAPI()
        // toxiproxy-cli create -l localhost:26379 -u localhost:6379 redis (on ports of our own)
        let created = try api.call("POST", "/proxies", #"{"name": "redis", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:\#(redis.port)"}"#)
        #expect(created.status == 201, "\(created)")
        let port = CynicWithAPI.port(of: created.object)
        // toxiproxy-cli list
        let listed = try api.call("GET", "/proxies")
        let proxy = try #require(listed.object["redis"] as? [String: Any], "\(listed)")
        #expect(proxy["enabled"] as? Bool == true)
        #expect(proxy["upstream"] as? String == "127.0.0.1:\(redis.port)")
        #expect((proxy["toxics"] as? [Any])?.isEmpty == true)

        func redisCLI(_ arguments: [String]) throws -> (output: String, seconds: Double) {
            let start = Date()
            let result = try runProgram("/usr/bin/env", ["redis-cli", "-p", String(port)] + arguments, timeout: 30)
            return (result.output.trimmingCharacters(in: .whitespacesAndNewlines), Date().timeIntervalSince(start))
        }
        #expect(try redisCLI(["SET", "omg", "pandas"]).output == "OK")
        #expect(try redisCLI(["GET", "omg"]).output == "pandas")

        // toxiproxy-cli toxic add -t latency -a latency=1000 redis
        let toxic = try api.call("POST", "/proxies/redis/toxics", #"{"type": "latency", "attributes": {"latency": 1000}}"#)
        #expect(toxic.status == 200, "\(toxic)")
        #expect(toxic.object["name"] as? String == "latency_downstream")
        let slow = try redisCLI(["GET", "omg"])
        #expect(slow.output == "pandas")
        #expect(slow.seconds >= 0.95, "GET took \(slow.seconds) s under 1000 ms of latency")

        // toxiproxy-cli toxic update / remove
        let updated = try api.call("PATCH", "/proxies/redis/toxics/latency_downstream", #"{"attributes": {"latency": 10}}"#)
        #expect((updated.object["attributes"] as? [String: Any])?["latency"] as? Int == 10, "\(updated)")
        #expect(try api.call("DELETE", "/proxies/redis/toxics/latency_downstream").status == 204)
        #expect(try redisCLI(["GET", "omg"]).seconds < 0.95)

        // toxiproxy's error bodies.
        let missing = try api.call("GET", "/proxies/nope")
        #expect(missing.status == 404 && missing.object["error"] as? String == "proxy not found", "\(missing)")
        let badType = try api.call("POST", "/proxies/redis/toxics", #"{"type": "gremlins"}"#)
        #expect(badType.status == 400 && (badType.object["error"] as? String ?? "").hasPrefix("invalid toxic type"), "\(badType)")
        let badStream = try api.call("POST", "/proxies/redis/toxics", #"{"type": "latency", "stream": "sideways"}"#)
        #expect(badStream.object["error"] as? String == "stream was invalid, can be either upstream or downstream", "\(badStream)")
        let noUpstream = try api.call("POST", "/proxies", #"{"name": "x"}"#)
        #expect(noUpstream.status == 400 && noUpstream.object["error"] as? String == "missing required field: upstream", "\(noUpstream)")
        // The proxy is a cynic service too.
        let service = try api.call("GET", "/services/redis")
        #expect(service.object["behaviour"] as? String == "proxy", "\(service)")
    }

    @Test("toxiproxy-cli, the README's session: create, list, toxic add/update/remove, toggle, delete",
          .enabled(if: toxiproxyCLI != nil))
    func toxiproxyCommandLine() throws {
        let cli = try #require(toxiproxyCLI)
        let upstream = try UpstreamServer.tcp("echo")
        let api = try CynicWithAPI()
        let host = String(api.url.dropFirst("http://".count))
        let listen = freePort()
        func run(_ arguments: String...) throws -> String {
            let result = try runProgram(cli, ["-h", host] + arguments)
            #expect(result.status == 0, "toxiproxy-cli \(arguments): \(result.output)")
            return result.output
        }
        #expect(try run("create", "-l", "127.0.0.1:\(listen)", "-u", upstream.address, "echo").contains("Created new proxy echo"))
        #expect(try run("list").contains("127.0.0.1:\(listen)"))
        #expect(try run("toxic", "add", "-t", "latency", "-a", "latency=1000", "echo").contains("latency_downstream"))
        #expect(try roundTrip(listen) >= 0.9)
        #expect(try run("inspect", "echo").contains("latency=1000"))
        #expect(try run("toxic", "update", "-n", "latency_downstream", "-a", "latency=20", "echo").contains("Updated"))
        #expect(try run("toxic", "remove", "-n", "latency_downstream", "echo").contains("Removed"))
        #expect(try roundTrip(listen) < 0.9)
        #expect(try run("toggle", "echo").contains("disabled"))
        #expect(throws: SocketClient.ConnectFailed.self) { try SocketClient(port: listen) }
        #expect(try run("delete", "echo").contains("Deleted"))
    }

    @Test("toxics added and removed while 50 clients stream through the proxy: every API call answers within a second")
    func apiUnderStreamingLoad() throws {
        let upstream = try UpstreamServer.tcp("echo")
        let api = try CynicWithAPI()
        let created = try api.call("POST", "/proxies", #"{"name": "stream", "listen": "127.0.0.1:0", "upstream": "\#(upstream.address)"}"#)
        let port = CynicWithAPI.port(of: created.object)
        let result = try runPython("""
            import json, socket, sys, threading, time, urllib.request
            api, port = sys.argv[1], int(sys.argv[2])
            stop = threading.Event()
            relayed = [0] * 50
            def stream(index):
                while not stop.is_set():
                    try:
                        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                            # Steady, not flat out: 50 clients at 200 kB/s each keep the proxy busy
                            # without starving the other tests that run beside this one.
                            block = b"x" * 4096
                            while not stop.is_set():
                                time.sleep(0.02)
                                s.sendall(block)
                                got = 0
                                while got < len(block):
                                    data = s.recv(65536)
                                    if not data: raise ConnectionError("closed")
                                    got += len(data)
                                relayed[index] += got
                    except OSError:
                        time.sleep(0.01)
            threads = [threading.Thread(target=stream, args=(i,), daemon=True) for i in range(50)]
            for t in threads: t.start()
            time.sleep(1)
            def call(method, path, body=None):
                request = urllib.request.Request(api + path, method=method, data=None if body is None else json.dumps(body).encode(),
                                                 headers={"Content-Type": "application/json"})
                start = time.monotonic()
                with urllib.request.urlopen(request, timeout=5) as answer:
                    answer.read()
                return time.monotonic() - start
            slowest = 0
            toxics = [("latency", {"latency": 5}), ("bandwidth", {"rate": 1000}), ("slicer", {"average_size": 64, "delay": 0}),
                      ("timeout", {"timeout": 1000}), ("limit_data", {"bytes": 100000})]
            for round in range(8):
                for kind, attributes in toxics:
                    for stream in ("downstream", "upstream"):
                        slowest = max(slowest, call("POST", "/proxies/stream/toxics", {"type": kind, "stream": stream, "attributes": attributes}))
                slowest = max(slowest, call("GET", "/proxies/stream/toxics"))
                for kind, _ in toxics:
                    for stream in ("downstream", "upstream"):
                        slowest = max(slowest, call("DELETE", f"/proxies/stream/toxics/{kind}_{stream}"))
            stop.set()
            print(json.dumps({"slowest": slowest, "relayed": sum(relayed), "calls": 8 * 21}))
            """, [api.url, String(port)], timeout: 240)
        #expect(result.status == 0, "\(result.output)")
        let line = result.standardOutput.split(separator: "\n").last.map(String.init) ?? ""
        let figures = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] ?? [:]
        let slowest = figures["slowest"] as? Double ?? 99
        #expect(slowest < 1.0, "the slowest API call took \(slowest) s: \(result.output)")
        #expect((figures["relayed"] as? Int ?? 0) > 0, "nothing streamed: \(result.output)")
        #expect(api.cynic.process.isRunning)
    }
}
