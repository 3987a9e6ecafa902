import CynicConfig
import CynicPlugins

/// What a server runs, as the lines `cynic plugins` prints from the status socket: each service
/// with its address and open connections, each behaviour with its live generations and the
/// connections each holds, and every refused file.
///
/// Made of plain values read from the server at one moment, so the text is tested without a
/// plugin loaded or a socket open.
struct StatusReport {
    struct Service {
        var name: String
        var behaviour: String
        /// Where it listens; nil while it does not accept (its behaviour is gone).
        var listening: ServiceAddress?
        var openConnections: Int
    }

    /// One loaded version of a plugin.
    struct Generation {
        var versionLabel: String
        var file: String
        var connections: Int
        var staysMapped: Bool
    }

    struct Behaviour {
        var name: String
        var current: Generation
        /// The behaviour's file is gone: `current` is the last generation, finishing its
        /// connections.
        var removed: Bool
        /// Earlier generations still holding connections.
        var older: [Generation]
    }

    var services: [Service]
    var behaviours: [Behaviour]
    var refusals: [PluginRefusal]

    var lines: [String] {
        var lines = ["services:"]
        for service in services {
            let state = service.listening.map { "listening on \($0)" } ?? "not accepting (behaviour gone)"
            lines.append("  \(service.name): behaviour \(service.behaviour), \(state), \(service.openConnections) open connection(s)")
        }
        lines.append("behaviours:")
        for behaviour in behaviours {
            let generation = behaviour.current
            if behaviour.removed {
                lines.append("  \(behaviour.name) (removed): version \(generation.versionLabel), \(generation.connections) connection(s) still on it")
                continue
            }
            let mapping = generation.staysMapped ? "links the Swift runtime, stays mapped" : "unloaded when unused"
            lines.append("  \(behaviour.name): version \(generation.versionLabel) (\(generation.file)), \(generation.connections) connection(s), \(mapping)")
            for old in behaviour.older {
                lines.append("    older version \(old.versionLabel): \(old.connections) connection(s) still on it")
            }
        }
        for refusal in refusals {
            lines.append("refused plugin \(refusal.file): \(refusal.reason)")
        }
        return lines
    }
}

extension StatusReport.Generation {
    init(_ plugin: Plugin) {
        self.init(versionLabel: plugin.versionLabel, file: plugin.file, connections: plugin.connections.current,
                  staysMapped: plugin.staysMapped)
    }
}

extension StatusReport.Service {
    init(_ service: CynicRuntime.Service) {
        self.init(name: service.spec.name, behaviour: service.spec.behaviour,
                  listening: service.isListening ? service.boundAddress : nil, openConnections: service.openConnections)
    }
}
