import CynicTestSupport
import Foundation
import Testing

/// 1,000 TLS handshakes at once (asyncio, each then one request), while a thread asks a plain
/// service of the same cynic every 20 ms: prints how many handshakes and requests succeeded,
/// the first errors, and the slowest answer of the plain service.
private let handshakeStorm = #"""
    import asyncio, http.client, json, resource, ssl, sys, threading, time
    tls_port, plain_port, ca, count = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, count + 256)), hard))
    context = ssl.create_default_context(cafile=ca)
    stop, plain = threading.Event(), {"answers": 0, "failures": [], "slowest": 0.0}

    def ask_plain():
        while not stop.is_set():
            started = time.monotonic()
            try:
                connection = http.client.HTTPConnection("127.0.0.1", plain_port, timeout=10)
                connection.request("GET", "/")
                assert connection.getresponse().read() == b'{"message": "Hello, World!"}'
                connection.close()
                plain["answers"] += 1
            except Exception as error:
                plain["failures"].append(repr(error))
            plain["slowest"] = max(plain["slowest"], time.monotonic() - started)
            time.sleep(0.02)

    async def one(gate):
        await gate.wait()
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", tls_port, ssl=context, server_hostname="localhost"), 60)
        writer.write(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        answer = await asyncio.wait_for(reader.read(), 60)
        writer.close()
        return answer.startswith(b"HTTP/1.1 200 OK")

    async def storm():
        gate = asyncio.Event()
        tasks = [asyncio.create_task(one(gate)) for _ in range(count)]
        await asyncio.sleep(0.1)
        gate.set()
        return await asyncio.gather(*tasks, return_exceptions=True)

    asker = threading.Thread(target=ask_plain)
    asker.start()
    results = asyncio.run(storm())
    stop.set()
    asker.join()
    print(json.dumps({"ok": sum(1 for r in results if r is True),
                      "errors": [repr(r) for r in results if r is not True][:5],
                      "plain_answers": plain["answers"], "plain_failures": plain["failures"][:5],
                      "plain_slowest": plain["slowest"]}))
    """#

@Suite("TLS under load")
struct TLSLoadTests {
    @Test("1,000 concurrent TLS handshakes all complete, and the other services answer all along")
    func thousandHandshakes() throws {
        let folder = TemporaryFolder("cynic-tls-load")
        let file = try folder.write("cynic.yaml", """
            services:
              secure:
                behaviour: http-json
                port: 0
                tls: valid
              plain:
                behaviour: http-json
                port: 0
            """)
        let cynic = try CynicProcess(["-c", file, "--no-log-sink", "--no-api", "--log-level", "warning"],
                                     environment: ["CYNIC_CA_DIR": folder.path + "/ca"])
        let ports = try cynic.waitForServices(2)
        try cynic.waitFor("local CA certificate: ")
        let secure = try #require(ports["secure"]), plain = try #require(ports["plain"])
        let result = try runPython(handshakeStorm, ["\(secure)", "\(plain)", folder.path + "/ca/ca.pem", "1000"], timeout: 240)
        let line = try #require(result.output.split(separator: "\n").last, "\(result.output)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "\(result.output)")
        #expect(report["ok"] as? Int == 1000, "\(report)")
        #expect((report["plain_failures"] as? [String])?.isEmpty == true, "\(report)")
        #expect((report["plain_answers"] as? Int ?? 0) > 0, "\(report)")
        // Generous for a loaded 2-core machine: the point is that it answers, not how fast.
        #expect((report["plain_slowest"] as? Double ?? 99) < 3, "\(report)")
        #expect(cynic.process.isRunning)
    }
}
