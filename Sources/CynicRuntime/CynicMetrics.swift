import Prometheus
import Synchronization

/// cynic's metrics, as `GET /metrics` gives them (docs/control-api.md, "Metrics").
///
/// Every metric is registered here and only here, each with one help text and one set of label
/// names: swift-prometheus calls fatalError on a name registered twice differently. Each series
/// (a metric with its label values) is made once and kept; a record or a plugin load then only
/// increments it.
public final class CynicMetrics: Sendable {
    /// Every metric cynic has.
    enum Metric: String, Sendable, CaseIterable {
        case connections = "cynic_connections_total"
        case openConnections = "cynic_connections_open"
        case bytes = "cynic_bytes_total"
        case pluginLoads = "cynic_plugin_loads_total"
        case pluginSwaps = "cynic_plugin_swaps_total"
        case pluginRefusals = "cynic_plugin_refusals_total"
        case shaperApplications = "cynic_shaper_applications_total"

        var labels: [String] {
            switch self {
            case .connections: ["service", "end"]
            case .openConnections: ["service"]
            case .bytes: ["service", "side", "direction"]
            case .pluginLoads, .pluginSwaps: ["plugin"]
            case .pluginRefusals: []
            case .shaperApplications: ["service", "shaper", "applied"]
            }
        }

        var help: String {
            switch self {
            case .connections: "Client connections ended, by service and how they ended."
            case .openConnections: "Client connections open now, by service."
            case .bytes: "Bytes read (in) and written (out), with clients and with upstreams, by service."
            case .pluginLoads: "Plugin generations loaded: at start, and new plugins found while serving."
            case .pluginSwaps: "New generations of a plugin that replaced the one serving."
            case .pluginRefusals: "Plugin files refused, at start or while serving."
            case .shaperApplications: "Client connections for which each shaper was drawn (applied) or not."
            }
        }

        var descriptor: MetricNameDescriptor {
            MetricNameDescriptor(metricName: rawValue, unitName: "", helpText: help)
        }
    }

    private struct SeriesKey: Hashable {
        let metric: Metric
        let values: [String]
    }

    public let registry = PrometheusCollectorRegistry()
    private let counters = Mutex<[SeriesKey: Counter]>([:])
    private let openGauges = Mutex<[String: Gauge]>([:])

    public init() {
        // Unlabelled: shown as 0 before any refusal.
        _ = counter(.pluginRefusals, [])
    }

    /// The series of `metric` with these label values, made the first time.
    private func counter(_ metric: Metric, _ values: [String]) -> Counter {
        precondition(values.count == metric.labels.count, "\(metric.rawValue): labels \(metric.labels)")
        let key = SeriesKey(metric: metric, values: values)
        return counters.withLock { counters in
            if let existing = counters[key] { return existing }
            let made = metric.labels.isEmpty
                ? registry.makeCounter(descriptor: metric.descriptor)
                : registry.makeCounter(descriptor: metric.descriptor, labels: Array(zip(metric.labels, values)))
            counters[key] = made
            return made
        }
    }

    /// Counts an ended connection: its end, its bytes, its shapers.
    func connectionEnded(_ record: ConnectionRecord) {
        let service = record.service
        counter(.connections, [service, record.end.kind.rawValue]).increment()
        add(record.client.bytesIn, service, "client", "in")
        add(record.client.bytesOut, service, "client", "out")
        if let upstream = record.upstream {
            add(upstream.bytesIn, service, "upstream", "in")
            add(upstream.bytesOut, service, "upstream", "out")
        }
        for shaper in record.shapers {
            counter(.shaperApplications, [service, shaper.name, shaper.applied ? "true" : "false"]).increment()
        }
    }

    private func add(_ bytes: Int, _ service: String, _ side: String, _ direction: String) {
        counter(.bytes, [service, side, direction]).increment(by: Int64(bytes))
    }

    /// A plugin generation loaded where none of its name served.
    public func pluginLoaded(_ plugin: String) { counter(.pluginLoads, [plugin]).increment() }
    /// A new generation of `plugin` replaced the one serving.
    public func pluginSwapped(_ plugin: String) { counter(.pluginSwaps, [plugin]).increment() }
    /// A plugin file refused.
    public func pluginRefused() { counter(.pluginRefusals, []).increment() }

    /// The Prometheus text, with the open connections of each service as given now (a service
    /// that is gone shows 0).
    public func exposition(openConnections: [String: Int]) -> String {
        openGauges.withLock { gauges in
            for (service, gauge) in gauges where openConnections[service] == nil { gauge.set(to: 0.0) }
            for (service, open) in openConnections {
                let gauge = gauges[service] ?? registry.makeGauge(descriptor: Metric.openConnections.descriptor,
                                                                  labels: [("service", service)])
                gauges[service] = gauge
                gauge.set(to: Double(open))
            }
        }
        return registry.emitToString()
    }
}
