import CynicPlugins
import CynicRuntime
import Hummingbird

/// The plugins: what is loaded, each generation still serving, what was refused; a rescan.
struct PluginRoutes: Sendable {
    let server: Server

    func register(in routes: inout RouteTable) {
        routes.add(.get, "/plugins") { _ in
            JSONResponse.make(PluginsJSON(await server.pluginListing()))
        }
        routes.add(.post, "/plugins/rescan") { _ in
            JSONResponse.make(PluginsJSON(await server.rescanPlugins()))
        }
    }
}

struct PluginsJSON: Encodable {
    struct Parameter: Encodable {
        let name: String
        let type: String
        let `default`: String?
        let description: String

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(name, forKey: .name)
            try container.encode(type, forKey: .type)
            try container.encode(self.default, forKey: .default)
            try container.encode(description, forKey: .description)
        }

        private enum CodingKeys: String, CodingKey { case name, type, `default`, description }
    }

    struct Generation: Encodable {
        let version: String
        let file: String
        let connections: Int
        let current: Bool
    }

    struct PluginJSON: Encodable {
        let name: String
        let kind: String
        let summary: String
        let file: String
        let version: String
        let defaultPort: Int?
        let parameters: [Parameter]
        let generations: [Generation]

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(name, forKey: .name)
            try container.encode(kind, forKey: .kind)
            try container.encode(summary, forKey: .summary)
            try container.encode(file, forKey: .file)
            try container.encode(version, forKey: .version)
            try container.encode(defaultPort, forKey: .defaultPort)
            try container.encode(parameters, forKey: .parameters)
            try container.encode(generations, forKey: .generations)
        }

        private enum CodingKeys: String, CodingKey {
            case name, kind, summary, file, version, parameters, generations
            case defaultPort = "default_port"
        }
    }

    struct Refusal: Encodable {
        let file: String
        let reason: String
    }

    let plugins: [PluginJSON]
    let refused: [Refusal]

    init(_ listing: PluginListing) {
        plugins = listing.plugins.map { entry in
            let plugin = entry.plugin
            return PluginJSON(name: plugin.name, kind: plugin.isShaper ? "shaper" : "behaviour", summary: plugin.summary,
                              file: plugin.file, version: entry.generations.first?.version ?? "",
                              defaultPort: plugin.defaultPort.map(Int.init),
                              parameters: plugin.parameters.map { parameter in
                                  Parameter(name: parameter.name, type: "\(parameter.type)",
                                            default: parameter.defaultText, description: parameter.doc)
                              },
                              generations: entry.generations.map {
                                  Generation(version: $0.version, file: $0.file, connections: $0.connections, current: $0.current)
                              })
        }
        refused = listing.refused.map { Refusal(file: $0.file, reason: $0.reason.description) }
    }
}
