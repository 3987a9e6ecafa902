import CynicRuntime
import CynicTestSupport
import Foundation
import Testing

/// The first-byte delay of `count` connections opened at once to `port`, each measured from just
/// before its own connect: one poll over all of them, so the draws of a distribution are seen
/// side by side in the time of one, not one after another.
func concurrentFirstBytes(port: Int, count: Int, timeout: Double = 20) throws -> [Double] {
    var clients: [SocketClient] = []
    var starts: [Date] = []
    for _ in 0..<count {
        starts.append(Date())
        clients.append(try SocketClient(port: port))
    }
    var delays = [Double?](repeating: nil, count: count)
    var pollers = clients.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
    let deadline = Date().addingTimeInterval(timeout)
    while delays.contains(where: { $0 == nil }), Date() < deadline {
        guard poll(&pollers, nfds_t(pollers.count), 100) > 0 else { continue }
        let now = Date()
        for index in pollers.indices where pollers[index].revents != 0 && delays[index] == nil {
            delays[index] = now.timeIntervalSince(starts[index])
            pollers[index].events = 0  // seen: ignore it from now on
        }
    }
    return delays.compactMap { $0 }
}

/// Runs `attempt` up to three times until it returns true: a check of a mean, a spread or a rate
/// holds on an idle machine, and a loaded one stalls event loops for seconds at times, which only
/// ever adds. Lower bounds are checked inside `attempt` on every run, since a stall cannot break them.
func holdsOnce(_ attempts: Int = 3, _ attempt: () async throws -> Bool) async rethrows -> Bool {
    for _ in 0..<attempts where try await attempt() { return true }
    return false
}

func mean(_ values: [Double]) -> Double { values.reduce(0, +) / Double(values.count) }

func standardDeviation(_ values: [Double]) -> Double {
    let average = mean(values)
    return (values.map { ($0 - average) * ($0 - average) }.reduce(0, +) / Double(values.count - 1)).squareRoot()
}

/// The shapers and modes that came with proxy mode: timeout, latency per chunk and its jitter
/// distributions, bandwidth shared by a service's connections. Bounds as in `ShaperTests`: lower
/// bounds strict, upper bounds seconds wide.
@Suite("Shaper modes")
struct ShaperModeTests {
    @Test("timeout ms=0: nothing arrives and the connection stays open; the client's read times out")
    func timeoutSilent() async throws {
        let service = try await TestServices.start("random", parameters: ["length": "5"], shapers: ["timeout"])
        defer { Task { await service.stop() } }
        let answer = try await offThePool { try TimedAnswer(port: service.port, timeout: 2) }
        #expect(answer.bytes.isEmpty)
        // Timed out: neither the behaviour's close (a FIN) nor anything else came through.
        #expect(answer.end == .timedOut)
        #expect(answer.finished >= 1.9)
    }

    @Test("timeout ms=800: nothing arrives, then the connection is closed `ms` after the open")
    func timeoutCloses() async throws {
        // No request: a request still unread at the close would make it an RST.
        let service = try await TestServices.start("random", parameters: ["length": "5"], shapers: ["timeout:ms=800"])
        defer { Task { await service.stop() } }
        let answer = try await offThePool { try TimedAnswer(port: service.port, timeout: 10) }
        #expect(answer.bytes.isEmpty)
        #expect(answer.end == .endOfFile)
        #expect(answer.finished >= 0.8)
        #expect(answer.finished < 0.8 + 3)
    }

    @Test("latency per-chunk: every chunk leaves `ms` after it was sent, so their spacing is kept, not added up")
    func latencyPerChunk() async throws {
        // drip: the head and a byte at once, then a byte every 250 ms: the last at 1 s.
        let service = try await TestServices.start("drip", parameters: ["size": "5", "interval_ms": "250"],
                                                   shapers: ["latency:ms=1000,mode=per-chunk"])
        defer { Task { await service.stop() } }
        // Each receive with its time: the chunks' spacing is what this checks.
        let (bytes, arrivals) = try await offThePool { () throws -> ([UInt8], [Double]) in
            let start = Date()
            let client = try SocketClient(port: service.port)
            client.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            var bytes: [UInt8] = []
            var arrivals: [Double] = []
            while case .bytes(let chunk) = client.receive(timeout: 15) {
                arrivals.append(Date().timeIntervalSince(start))
                bytes += chunk
            }
            return (bytes, arrivals)
        }
        let answer = String(decoding: bytes, as: UTF8.self)
        #expect(answer.hasPrefix("HTTP/1.1 200"))
        #expect(answer.components(separatedBy: "\r\n\r\n").last?.utf8.count == 5, "\(answer)")
        let first = try #require(arrivals.first), last = try #require(arrivals.last)
        #expect(first >= 1.0, "first chunk after \(first) s")
        // The last byte was sent 1 s after the first: it arrives the latency after that...
        #expect(last >= 2.0, "last chunk after \(last) s")
        // ...not the latency once per chunk (6 chunks: 6 s and more).
        #expect(last < 4.5, "last chunk after \(last) s")
        // Spread out as they were sent, not in one burst at the end.
        #expect(last - first >= 0.75, "arrivals \(arrivals)")
        #expect(arrivals.count >= 3, "arrivals \(arrivals)")
    }

    @Test("latency per-chunk on a behaviour that queues everything at once: one delay in all")
    func latencyPerChunkAtOnce() async throws {
        let service = try await TestServices.start("random", parameters: ["length": "200000"],
                                                   shapers: ["slicer:size=1000,delay_ms=0", "latency:ms=1500,mode=per-chunk"])
        defer { Task { await service.stop() } }
        let answer = try await offThePool { try TimedAnswer(port: service.port) }
        #expect(answer.bytes.count == 200_000)
        #expect(answer.end == .endOfFile)
        #expect(try #require(answer.firstByte) >= 1.5)
        // 200 chunks each delayed once, together: not 200 × 1.5 s.
        #expect(answer.finished < 1.5 + 4)
    }

    @Test("latency jitter, normal: mean `ms`, standard deviation `jitter_ms`")
    func normalJitter() async throws {
        let service = try await TestServices.start("random", parameters: ["length": "1"],
                                                   shapers: ["latency:ms=600,jitter_ms=150,distribution=normal,seed=3"])
        defer { Task { await service.stop() } }
        var seen: [String] = []
        let held = try await holdsOnce {
            let delays = try await offThePool { try concurrentFirstBytes(port: service.port, count: 120) }
            #expect(delays.count == 120)
            seen.append("mean \(mean(delays)), sd \(standardDeviation(delays)), min \(delays.min() ?? 0)")
            // Sampling error of a mean of 120: 14 ms; of the sd: about 10 ms. Unlike uniform
            // jitter, some draws fall below `ms`.
            return (0.57...0.80).contains(mean(delays)) && (0.10...0.25).contains(standardDeviation(delays))
                && delays.contains { $0 < 0.55 }
        }
        #expect(held, "\(seen)")
    }

    @Test("latency jitter, lognormal: median `ms`, spread `sigma` in log space")
    func lognormalJitter() async throws {
        let service = try await TestServices.start("random", parameters: ["length": "1"],
                                                   shapers: ["latency:ms=500,distribution=lognormal,sigma=0.5,seed=5"])
        defer { Task { await service.stop() } }
        var seen: [String] = []
        let held = try await holdsOnce {
            let delays = try await offThePool { try concurrentFirstBytes(port: service.port, count: 120) }
            #expect(delays.count == 120)
            let median = delays.sorted()[60]
            let logSpread = standardDeviation(delays.map { log($0) })
            seen.append("median \(median), sd of ln \(logSpread), mean \(mean(delays))")
            // Skewed: the mean lies above the median (e^(σ²/2) = 1.13 times it).
            return (0.44...0.70).contains(median) && (0.35...0.70).contains(logSpread) && mean(delays) > median
        }
        #expect(held, "\(seen)")
    }

    @Test("latency jitter, uniform (the default): between `ms` and `ms + jitter_ms`")
    func uniformJitter() async throws {
        let service = try await TestServices.start("random", parameters: ["length": "1"],
                                                   shapers: ["latency:ms=400,jitter_ms=400,seed=9"])
        defer { Task { await service.stop() } }
        var seen: [String] = []
        let held = try await holdsOnce {
            let delays = try await offThePool { try concurrentFirstBytes(port: service.port, count: 120) }
            #expect(delays.count == 120)
            #expect(delays.allSatisfy { $0 >= 0.4 }, "min \(delays.min() ?? 0)")
            seen.append("mean \(mean(delays)), sd \(standardDeviation(delays))")
            // Uniform on 400 ms: mean 600 ms, sd 115 ms.
            return (0.55...0.80).contains(mean(delays)) && (0.08...0.20).contains(standardDeviation(delays))
        }
        #expect(held, "\(seen)")
    }

    @Test("latency with a seed: the nth connection draws the same delay on every run")
    func seededDelays() async throws {
        func delays(seed: UInt64) async throws -> [Double] {
            let service = try await TestServices.start("random", parameters: ["length": "1"],
                                                       shapers: ["latency:ms=0,jitter_ms=1500,seed=\(seed)"])
            defer { Task { await service.stop() } }
            let port = service.port
            // One at a time: the draws are taken in accept order.
            return try await offThePool { try (0..<4).map { _ in try #require(try TimedAnswer(port: port).firstByte) } }
        }
        // Scheduling moves a delay by tens of milliseconds (seconds, at worst, on a loaded
        // machine: hence up to three tries); draws on 1.5 s differ by hundreds.
        let first = try await delays(seed: 42)
        var seen: [[Double]] = [first]
        let repeated = try await holdsOnce {
            let again = try await delays(seed: 42)
            seen.append(again)
            return zip(first, again).allSatisfy { abs($0 - $1) < 0.35 }
        }
        #expect(repeated, "\(seen)")
        let other = try await delays(seed: 7)
        #expect(zip(first, other).contains { abs($0 - $1) >= 0.35 }, "\(first) vs \(other)")
    }

    @Test("latency refuses parameters that do not fit its distribution")
    func latencyRefuses() async throws {
        for (shaper, reason) in [("latency:mode=every", "mode: expected first-byte or per-chunk"),
                                 ("latency:distribution=pareto", "distribution: expected uniform, normal or lognormal"),
                                 ("latency:distribution=lognormal,jitter_ms=5", "jitter_ms does not apply to lognormal"),
                                 ("latency:sigma=0.5", "sigma applies to lognormal only")] {
            let error = await #expect(throws: ServiceError.self) { try await TestServices.start("random", shapers: [shaper]) }
            #expect(error?.description.contains(reason) == true, "\(shaper): \(error.map { "\($0)" } ?? "no error")")
        }
    }

    @Test("bandwidth shared: two connections together stay under the cap, one alone gets all of it")
    func bandwidthShared() async throws {
        let rate = 100_000.0
        let service = try await TestServices.start("random", parameters: ["length": "150000"],
                                                   shapers: ["bandwidth:bytes_per_second=100000,shared=true"])
        defer { Task { await service.stop() } }
        let port = service.port
        // Alone: all of the cap (the best of three, as in ShaperTests.bandwidth).
        var alone: [Double] = []
        for _ in 0..<3 {
            let answer = try await offThePool { try TimedAnswer(port: port) }
            #expect(answer.bytes.count == 150_000)
            let measured = Double(answer.bytes.count) / answer.finished
            #expect(measured <= rate * 1.1, "\(Int(measured)) B/s alone")
            alone.append(measured)
            if measured >= rate * 0.9 { break }
        }
        #expect(alone.contains { $0 >= rate * 0.9 }, "\(alone.map { Int($0) }) B/s alone")
        // Together: the two share the one cap, so the pair takes twice as long.
        let start = Date()
        async let first = offThePool { try TimedAnswer(port: port) }
        async let second = offThePool { try TimedAnswer(port: port) }
        let both = try await [first, second]
        let elapsed = Date().timeIntervalSince(start)
        #expect(both.allSatisfy { $0.bytes.count == 150_000 && $0.end == .endOfFile })
        let together = 300_000 / elapsed
        #expect(together <= rate * 1.1, "\(Int(together)) B/s together")
        // Each got a share, not the whole cap: neither finished in the time one alone takes.
        #expect(both.allSatisfy { $0.finished >= 150_000 / rate * 1.1 }, "\(both.map(\.finished)) s")
    }

    @Test("bandwidth per connection (the default): two connections each get the whole cap")
    func bandwidthPerConnection() async throws {
        let service = try await TestServices.start("random", parameters: ["length": "150000"],
                                                   shapers: ["bandwidth:bytes_per_second=100000"])
        defer { Task { await service.stop() } }
        let port = service.port
        var rates: [Int] = []
        let fast = try await holdsOnce {
            let start = Date()
            async let first = offThePool { try TimedAnswer(port: port) }
            async let second = offThePool { try TimedAnswer(port: port) }
            let both = try await [first, second]
            let elapsed = Date().timeIntervalSince(start)
            #expect(both.allSatisfy { $0.bytes.count == 150_000 })
            // Each at 100 kB/s on its own: 1.5 s for both, never under it; shared would take 3 s.
            #expect(both.allSatisfy { $0.finished >= 1.5 / 1.1 })
            rates.append(Int(300_000 / elapsed))
            return 300_000 / elapsed > 100_000 * 1.2
        }
        #expect(fast, "\(rates) B/s together")
    }
}
