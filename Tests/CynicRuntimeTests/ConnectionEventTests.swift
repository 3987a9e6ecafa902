import CynicConfig
import CynicPlugins
import CynicRuntime
import CynicTestSupport
import Foundation
import Synchronization
import Testing

/// A shipped behaviour served with an event log and metrics of its own, so that what a test
/// reads is its own connections' records.
private struct Recorded {
    let service: Service
    let events: ConnectionEventLog
    let metrics: CynicMetrics

    init(_ behaviour: String, parameters: [String: String] = [:], shapers: [String] = []) async throws {
        metrics = CynicMetrics()
        events = try ConnectionEventLog(logger: TestServices.logger, metrics: metrics)
        service = try await TestServices.start(behaviour, parameters: parameters, shapers: shapers, events: events)
    }

    /// The first record after `afterID`, waiting for it as long as a loaded machine may need.
    func next(after afterID: UInt64 = 0) async throws -> ConnectionRecord {
        let found = await events.wait(afterID: afterID, limit: 1, timeout: .seconds(30))
        return try #require(found.records.first, "no connection record within 30 s")
    }

    /// Waits until the service has `count` connections open (accepted, its plugin told).
    func waitUntilOpen(_ count: Int) async throws {
        let deadline = ContinuousClock.now + .seconds(20)
        while service.openConnections != count, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(service.openConnections == count)
    }

    func stop() async {
        await service.stop()
        await events.finish()
    }
}

private final class Flag: Sendable {
    let value = Atomic<Bool>(false)
}

/// Makes the client's close an RST.
private func resetOnClose(_ client: SocketClient) {
    var option = linger(l_onoff: 1, l_linger: 0)
    setsockopt(client.fd, SOL_SOCKET, SO_LINGER, &option, socklen_t(MemoryLayout<linger>.size))
}

@Suite("Connection records: one per connection, saying how it ended and what it carried")
struct ConnectionEventTests {
    @Test("a proxy in front of a real echo server: bytes on both sides; the client's FIN first is peer_closed")
    func proxyBytesBothSides() async throws {
        let upstream = try UpstreamServer.tcp("echo")
        let recorded = try await Recorded("proxy", parameters: ["upstream": upstream.address])
        let echoed = try await offThePool { () -> Int in
            let client = try SocketClient(port: recorded.service.port)
            client.send("hello, upstream")
            var received: [UInt8] = []
            while received.count < 15, case .bytes(let chunk) = client.receive() { received += chunk }
            client.shutdownWrite()
            return received.count + client.receiveAll().bytes.count
        }
        #expect(echoed == 15)
        let record = try await recorded.next()
        #expect(record.id == 1)
        #expect(record.service == "proxy" && record.behaviour == "proxy")
        #expect(record.version == TestServices.shipped.plugins["proxy"]?.version.map { String($0.prefix(12)) })
        #expect(record.peer?.hasPrefix("127.0.0.1:") == true)
        #expect(record.client == .init(bytesIn: 15, bytesOut: 15))
        #expect(record.upstream == .init(connections: 1, bytesIn: 15, bytesOut: 15, failed: []))
        #expect(record.end == ConnectionEnd(.peerClosed, by: .peer))
        await recorded.stop()
    }

    @Test("an upstream that refuses: upstream_refused by the behaviour, the failed connect listed")
    func upstreamRefused() async throws {
        let refusing = RefusingPort()
        let recorded = try await Recorded("proxy", parameters: ["upstream": refusing.address])
        let end = try await offThePool { try SocketClient(port: recorded.service.port).receiveAll().end }
        #expect(end == .endOfFile)  // unreachable=close: a FIN
        let record = try await recorded.next()
        #expect(record.end.kind == .upstreamRefused)
        #expect(record.end.endedBy == .behaviour)
        #expect(record.end.reason == "upstream \(refusing.address): Connection refused (the client got a FIN)")
        #expect(record.upstream == .init(connections: 0, bytesIn: 0, bytesOut: 0,
                                         failed: [.init(address: refusing.address, error: "Connection refused")]))
        await recorded.stop()
    }

    @Test("the timeout shaper drops the behaviour's close and closes later itself: ended by 'shaper timeout'")
    func timeoutShaper() async throws {
        let recorded = try await Recorded("accept-close", shapers: ["timeout:ms=300"])
        let end = try await offThePool { try SocketClient(port: recorded.service.port).receiveAll().end }
        #expect(end == .endOfFile)
        let record = try await recorded.next()
        #expect(record.end == ConnectionEnd(.closed, by: .shaper("timeout")))
        #expect(record.duration >= .milliseconds(250))
        #expect(record.shapers == [.init(name: "timeout", shaper: "timeout", direction: "downstream", applied: true)])
        #expect(record.upstream == nil)
        await recorded.stop()
    }

    @Test("the behaviour's close, forwarded later by slow-close: still the behaviour's; a shaper not drawn says so")
    func forwardedCloseStaysTheBehaviours() async throws {
        let recorded = try await Recorded("accept-close", shapers: ["slow-close:ms=50", "timeout:probability=0"])
        _ = try await offThePool { try SocketClient(port: recorded.service.port).receiveAll() }
        let record = try await recorded.next()
        #expect(record.end == ConnectionEnd(.closed, by: .behaviour))
        #expect(record.shapers.map(\.applied) == [true, false])
        await recorded.stop()
    }

    @Test("the reset behaviour: reset by the behaviour, the client's bytes counted")
    func resetBehaviour() async throws {
        let recorded = try await Recorded("reset")
        let end = try await offThePool { () -> SocketClient.Received in
            let client = try SocketClient(port: recorded.service.port)
            client.send("hi")
            return client.receiveAll().end
        }
        #expect(end == .failed(errno: ECONNRESET))
        let record = try await recorded.next()
        #expect(record.end == ConnectionEnd(.reset, by: .behaviour))
        #expect(record.client == .init(bytesIn: 2, bytesOut: 0))
        await recorded.stop()
    }

    @Test("a client that resets: peer_reset, ended by the peer")
    func clientResets() async throws {
        let recorded = try await Recorded("noresponse")
        let client = try SocketClient(port: recorded.service.port)
        client.send("abc")
        try await recorded.waitUntilOpen(1)
        resetOnClose(client)
        _ = consume client
        let record = try await recorded.next()
        #expect(record.end.kind == .peerReset)
        #expect(record.end.endedBy == .peer)
        #expect(record.end.reason == "Connection reset by peer")
        await recorded.stop()
    }

    @Test("a client that closes first: peer_closed, its bytes counted")
    func clientClosesFirst() async throws {
        let recorded = try await Recorded("noresponse")
        let end = try await offThePool { () -> SocketClient.Received in
            let client = try SocketClient(port: recorded.service.port)
            client.send("twelve bytes")
            client.shutdownWrite()
            return client.receiveAll().end
        }
        #expect(end == .endOfFile)
        let record = try await recorded.next()
        #expect(record.end == ConnectionEnd(.peerClosed, by: .peer))
        #expect(record.client == .init(bytesIn: 12, bytesOut: 0))
        await recorded.stop()
    }

    @Test("an HTTP service counts the bytes on the wire, not the request it hands the plugin")
    func httpBytesOnTheWire() async throws {
        let recorded = try await Recorded("http-json")
        let result = try await offThePool {
            try runPython("""
                import socket, sys
                s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20)
                request = b"GET /anything HTTP/1.1\\r\\nHost: example\\r\\nConnection: close\\r\\n\\r\\n"
                s.sendall(request)
                received = 0
                while True:
                    chunk = s.recv(65536)
                    if not chunk: break
                    received += len(chunk)
                print(len(request), received)
                """, [String(recorded.service.port)])
        }
        let counts = result.standardOutput.split(separator: " ").compactMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        try #require(counts.count == 2, "\(result.output)")
        let record = try await recorded.next()
        #expect(record.client == .init(bytesIn: counts[0], bytesOut: counts[1]))
        #expect(counts[1] > 0)
        await recorded.stop()
    }

    @Test("closeOpenConnections closes every open connection: closed by cynic, 'service disabled'")
    func closeOpenConnections() async throws {
        let recorded = try await Recorded("noresponse")
        let clients = try (0..<2).map { _ in try SocketClient(port: recorded.service.port) }
        try await recorded.waitUntilOpen(2)
        #expect(recorded.service.closeOpenConnections() == 2)
        for client in clients {
            let end = try await offThePool { client.receiveAll().end }
            #expect(end == .endOfFile)
        }
        let found = await recorded.events.wait(afterID: 1, timeout: .seconds(30))
        let all = recorded.events.records().records
        #expect(found.lastID == 2)
        #expect(all.map(\.end) == Array(repeating: ConnectionEnd(.closed, by: .cynic, reason: "service disabled"), count: 2))
        #expect(recorded.service.openConnections == 0)
        await recorded.stop()
    }

    @Test("'the client retried 3 times', from the events alone: requests with Retry(total=2) against reset")
    func clientRetries() async throws {
        let recorded = try await Recorded("reset")
        let result = try await offThePool {
            try runPython("""
                import sys, requests
                from requests.adapters import HTTPAdapter
                from urllib3.util.retry import Retry
                session = requests.Session()
                session.mount("http://", HTTPAdapter(max_retries=Retry(total=2, backoff_factor=0)))
                try:
                    session.get(sys.argv[1], timeout=20)
                    print("answered")
                except requests.exceptions.ConnectionError:
                    print("gave up")
                """, ["http://127.0.0.1:\(recorded.service.port)/"])
        }
        #expect(result.standardOutput == "gave up\n", "\(result.output)")
        // Each attempt's record is made before its client sees the RST: all three are in.
        let records = recorded.events.records(service: "reset").records
        #expect(records.count == 3)
        #expect(records.allSatisfy { $0.end == ConnectionEnd(.reset, by: .behaviour) && $0.client.bytesIn > 0 })
        await recorded.stop()
    }
}

@Suite("The event log: ids, filters, wait, subscribe, JSON")
struct ConnectionEventLogTests {
    @Test("wait returns when a matching record arrives, not before; a timeout returns empty")
    func waitsForARecord() async throws {
        let recorded = try await Recorded("accept-close")
        let returned = Flag()
        let events = recorded.events
        let waiter = Task {
            defer { returned.value.store(true, ordering: .relaxed) }
            return await events.wait(service: "accept-close", afterID: 0, timeout: .seconds(60))
        }
        // Nothing has ended yet: it must still be waiting, and a wait for another service too.
        let other = await events.wait(service: "elsewhere", timeout: .milliseconds(300))
        #expect(other.records.isEmpty && other.lastID == 0)
        let returnedEarly = returned.value.load(ordering: .relaxed)
        #expect(!returnedEarly)
        _ = try await offThePool { try SocketClient(port: recorded.service.port).receiveAll() }
        let found = await waiter.value
        #expect(found.records.map(\.id) == [1])
        #expect(found.lastID == 1)
        // Already there: at once, whatever the timeout.
        let clock = ContinuousClock()
        let start = clock.now
        let again = await events.wait(afterID: 0, timeout: .seconds(60))
        #expect(again.records.count == 1)
        #expect(clock.now - start < .seconds(5))
        await recorded.stop()
    }

    @Test("a cancelled wait returns at once")
    func cancelledWait() async throws {
        let events = try ConnectionEventLog(logger: TestServices.logger)
        let clock = ContinuousClock()
        let start = clock.now
        let waiter = Task { await events.wait(timeout: .seconds(300)) }
        try await Task.sleep(for: .milliseconds(100))
        waiter.cancel()
        let result = await waiter.value
        #expect(result.records.isEmpty)
        // Long before the timeout (a loaded machine can keep a task waiting for a thread a while).
        #expect(clock.now - start < .seconds(120))
    }

    @Test("subscribe delivers every record of its service, in order")
    func subscribeInOrder() async throws {
        let recorded = try await Recorded("accept-close")
        let stream = recorded.events.subscribe(service: "accept-close")
        let elsewhere = recorded.events.subscribe(service: "elsewhere")
        let port = recorded.service.port
        // Several clients at once: their records arrive from both event loops.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask { _ = try await offThePool { try SocketClient(port: port).receiveAll() } }
            }
            try await group.waitForAll()
        }
        var received: [UInt64] = []
        for await record in stream {
            received.append(record.id)
            if received.count == 8 { break }
        }
        #expect(received == Array(1...8))
        await recorded.events.finish()
        var other = 0
        for await _ in elsewhere { other += 1 }
        #expect(other == 0)
        await recorded.service.stop()
    }

    @Test("records: the last `limit` matching, oldest first; the ring keeps the last `capacity`")
    func filtersAndRing() throws {
        let events = try ConnectionEventLog(capacity: 5, logger: TestServices.logger)
        let base = Date()
        for index in 0..<8 {
            events.add(record(service: index % 2 == 0 ? "a" : "b", started: base.addingTimeInterval(Double(index))))
        }
        #expect(events.records().records.map(\.id) == [4, 5, 6, 7, 8])
        #expect(events.records(service: "a").records.map(\.id) == [5, 7])
        #expect(events.records(limit: 2).records.map(\.id) == [7, 8])
        #expect(events.records(afterID: 6).records.map(\.id) == [7, 8])
        #expect(events.records(since: base.addingTimeInterval(5.5)).records.map(\.id) == [7, 8])
        #expect(events.records(service: "c").lastID == 8)
    }

    @Test("a record's JSON: the contract's keys, null for no upstream and no reason; the file's line says the same")
    func jsonShape() throws {
        let record = record(service: "db", started: Date(timeIntervalSince1970: 1_796_126_400.1235))
        let encoded = try JSONSerialization.jsonObject(with: JSONEncoder().encode(record)) as? NSDictionary
        let line = try JSONSerialization.jsonObject(with: Data(record.jsonLine.utf8)) as? NSDictionary
        #expect(encoded == line)
        let object = try #require(line as? [String: Any])
        #expect(Set(object.keys) == ["id", "service", "behaviour", "version", "peer", "shapers", "client", "upstream",
                                     "started", "duration_ms", "end", "ended_by", "reason"])
        #expect(object["upstream"] is NSNull && object["reason"] is NSNull)
        #expect(object["started"] as? String == "2026-12-01T12:00:00.123Z")
        #expect(object["end"] as? String == "closed" && object["ended_by"] as? String == "shaper latency")
        #expect(object["duration_ms"] as? Double == 12.5)
        #expect((object["client"] as? [String: Int]) == ["bytes_in": 120, "bytes_out": 4096])
        #expect(record.jsonLine.hasPrefix(#"{"id":0,"service":"db","behaviour":"proxy","version":"3f9a0c1b2d4e","peer":"127.0.0.1:51234","shapers":[{"name":"latency","#))
    }

    @Test("a file that cannot be opened is one line saying why")
    func unopenableFile() {
        #expect {
            try ConnectionEventLog(logger: TestServices.logger, file: "/nonexistent/folder/events.jsonl")
        } throws: { error in
            "\(error)" == "cannot open the events file /nonexistent/folder/events.jsonl: No such file or directory"
        }
    }

    @Test("how a connection ended, from what its driver saw", arguments: [
        (ConnectionEnd(.closed, by: .behaviour), ECONNREFUSED, ConnectionEnd.Kind.upstreamRefused),
        (ConnectionEnd(.reset, by: .behaviour), EHOSTUNREACH, .upstreamUnreachable),
        (ConnectionEnd(.closed, by: .behaviour), ENETUNREACH, .upstreamUnreachable),
        (ConnectionEnd(.closed, by: .behaviour), ETIMEDOUT, .timeout),
        // Not the behaviour's doing: the failure does not explain it.
        (ConnectionEnd(.closed, by: .shaper("timeout")), ECONNREFUSED, .closed),
        (ConnectionEnd(.peerClosed, by: .peer), ECONNREFUSED, .peerClosed),
    ])
    func endAfterUpstreamFailure(ending: ConnectionEnd, errno: Int32, expected: ConnectionEnd.Kind) {
        #expect(ConnectionEnd.decide(ending, peerClosed: false, serverStopping: false,
                                     lastConnectFailure: (address: "10.0.0.1:5432", errno: errno)).kind == expected)
    }

    @Test("with nothing else known: server_stopping while cynic stops, peer_closed after the client's FIN")
    func endWithoutCause() {
        #expect(ConnectionEnd.decide(nil, peerClosed: true, serverStopping: true, lastConnectFailure: nil)
                == ConnectionEnd(.serverStopping, by: .cynic))
        #expect(ConnectionEnd.decide(nil, peerClosed: true, serverStopping: false, lastConnectFailure: nil)
                == ConnectionEnd(.peerClosed, by: .peer))
        // Our FIN first (a shutdown_write), then the peer's: NIO closes the socket itself.
        #expect(ConnectionEnd.decide(nil, finSentFirstBy: .behaviour, peerClosed: true, serverStopping: false,
                                     lastConnectFailure: (address: "127.0.0.1:1", errno: ECONNREFUSED))
                == ConnectionEnd(.upstreamRefused, by: .behaviour,
                                 reason: "upstream 127.0.0.1:1: Connection refused (the client got a FIN)"))
        // A known end wins over the shutdown.
        #expect(ConnectionEnd.decide(ConnectionEnd(.reset, by: .behaviour), peerClosed: false, serverStopping: true,
                                     lastConnectFailure: nil) == ConnectionEnd(.reset, by: .behaviour))
    }
}

/// A record as a driver would make it, for the log's own tests.
private func record(service: String, started: Date) -> ConnectionRecord {
    ConnectionRecord(service: service, behaviour: "proxy", version: "3f9a0c1b2d4e", peer: "127.0.0.1:51234",
                     shapers: [.init(name: "latency", shaper: "latency", direction: "downstream", applied: true)],
                     client: .init(bytesIn: 120, bytesOut: 4096), upstream: nil, started: started,
                     duration: .microseconds(12_500), end: ConnectionEnd(.closed, by: .shaper("latency")))
}
