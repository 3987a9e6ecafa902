import CynicConfig
import CynicPlugins
import CynicRuntime
import CynicTestSupport
import Foundation
import Testing

/// The samples of a Prometheus text, as `prometheus_client`'s parser reads it: one line per
/// sample, `name{label=value,...} value`, labels sorted.
private func parsedSamples(_ text: String) throws -> [String: Double] {
    let result = try runProgram("python3", ["-c", """
        import sys
        from prometheus_client.parser import text_string_to_metric_families
        for family in text_string_to_metric_families(sys.stdin.read()):
            for sample in family.samples:
                labels = ",".join("%s=%s" % item for item in sorted(sample.labels.items()))
                print("%s{%s} %r" % (sample.name, labels, sample.value))
        """], input: text)
    try #require(result.status == 0, "prometheus_client cannot parse it: \(result.output)\n\(text)")
    var samples: [String: Double] = [:]
    for line in result.standardOutput.split(separator: "\n") {
        let parts = line.split(separator: " ")
        samples[String(parts[0])] = Double(parts[1])
    }
    return samples
}

@Suite("Metrics: Prometheus text that counts what happened")
struct MetricsTests {
    @Test("connections by end, bytes by side and direction, shapers drawn or not, open connections",
          .enabled(if: programExists("python3")))
    func countsConnections() async throws {
        let upstream = try UpstreamServer.tcp("echo")
        let metrics = CynicMetrics()
        let events = try ConnectionEventLog(logger: TestServices.logger, metrics: metrics)
        let service = try await TestServices.start("proxy", parameters: ["upstream": upstream.address],
                                                   shapers: ["latency:ms=1", "timeout:probability=0"], events: events)
        let port = service.port
        for _ in 0..<2 {
            try await offThePool {
                let client = try SocketClient(port: port)
                client.send("ping")
                _ = client.receive()
                client.shutdownWrite()
                _ = client.receiveAll()
            }
        }
        let ended = await events.wait(afterID: 1, timeout: .seconds(30))
        #expect(ended.lastID == 2)
        let held = try SocketClient(port: port)
        let deadline = ContinuousClock.now + .seconds(20)
        while service.openConnections != 1, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }

        let text = metrics.exposition(openConnections: ["proxy": service.openConnections, "gone": 0])
        let samples = try await offThePool { try parsedSamples(text) }
        #expect(samples["cynic_connections_total{end=peer_closed,service=proxy}"] == 2, "\(text)")
        #expect(samples["cynic_connections_open{service=proxy}"] == 1)
        #expect(samples["cynic_connections_open{service=gone}"] == 0)
        #expect(samples["cynic_bytes_total{direction=in,service=proxy,side=client}"] == 8)
        #expect(samples["cynic_bytes_total{direction=out,service=proxy,side=client}"] == 8)
        #expect(samples["cynic_bytes_total{direction=in,service=proxy,side=upstream}"] == 8)
        #expect(samples["cynic_bytes_total{direction=out,service=proxy,side=upstream}"] == 8)
        #expect(samples["cynic_shaper_applications_total{applied=true,service=proxy,shaper=latency}"] == 2)
        #expect(samples["cynic_shaper_applications_total{applied=false,service=proxy,shaper=timeout}"] == 2)
        #expect(samples["cynic_plugin_refusals_total{}"] == 0)
        _ = held
        await service.stop()
        await events.finish()
    }

    @Test("a server counts the plugins it loads and the files it refuses; its services' records reach its log",
          .enabled(if: programExists("python3")))
    func serverCountsPlugins() async throws {
        let folder = TemporaryFolder("cynic-metrics")
        try folder.write("broken.so", "not an ELF file")
        let metrics = CynicMetrics()
        let events = try ConnectionEventLog(logger: TestServices.logger, metrics: metrics)
        let copies = try PluginCopies()
        let server = Server(directories: [PluginDirectory(path: Paths.buildFolder, prefix: "libcynic-plugin-reset"),
                                          PluginDirectory(path: folder.path)],
                            source: .fixed([ServiceSpec(name: "flaky", behaviour: "reset",
                                                        address: .tcp(host: "127.0.0.1", port: 0), origin: "test")]),
                            group: TestServices.group, controlLoop: TestServices.control.next(),
                            logger: TestServices.logger, copies: copies, watch: false, events: events, metrics: metrics)
        _ = try await server.start()
        #expect(server.events === events && server.metrics === metrics)
        let port = await server.runningServices[0].port
        _ = try await offThePool { () -> SocketClient.Received in
            let client = try SocketClient(port: port)
            client.send("x")
            return client.receiveAll().end
        }
        let record = try #require(await events.wait(service: "flaky", timeout: .seconds(30)).records.first)
        #expect(record.behaviour == "reset" && record.end.kind == .reset)

        let text = await server.metricsExposition()
        let samples = try await offThePool { try parsedSamples(text) }
        #expect(samples["cynic_plugin_loads_total{plugin=reset}"] == 1, "\(text)")
        #expect(samples["cynic_plugin_refusals_total{}"] == 1)
        #expect(samples["cynic_connections_total{end=reset,service=flaky}"] == 1)
        #expect(samples["cynic_connections_open{service=flaky}"] == 0)
        await server.stop()
        await events.finish()
        copies.removeAll()
    }
}
