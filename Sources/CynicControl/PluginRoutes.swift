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

/// The plugins as `GET /plugins` answers them, and `cynic plugins --json` prints them.
public struct PluginsJSON: Encodable {
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

    /// The cynic that would load the plugins, in a listing made before any serves them.
    struct Loader: Encodable {
        let version: String
        let abi: UInt32
    }

    let plugins: [PluginJSON]
    let refused: [Refusal]
    /// Only in a listing of a catalog (`cynic plugins --json`); the API's `GET /` has its version.
    let cynic: Loader?

    init(_ listing: PluginListing) {
        self.init(listing.plugins.map { entry in
            (entry.plugin, entry.generations.map {
                Generation(version: $0.version, file: $0.file, connections: $0.connections, current: $0.current)
            })
        }, refused: listing.refused, loader: nil)
    }

    /// The plugins a catalog loaded, before any cynic serves them, and the cynic that loaded them:
    /// each plugin's only generation is the file a cynic starting now would load, with no connection.
    public init(catalog: PluginCatalog) {
        self.init(catalog.sortedPlugins.map { plugin in
            (plugin, [Generation(version: plugin.versionLabel, file: plugin.file, connections: 0, current: true)])
        }, refused: catalog.refusals, loader: Loader(version: CynicVersion.current, abi: CynicVersion.pluginABI))
    }

    private init(_ entries: [(plugin: Plugin, generations: [Generation])], refused: [PluginRefusal], loader: Loader?) {
        plugins = entries.map { plugin, generations in
            PluginJSON(name: plugin.name, kind: plugin.isShaper ? "shaper" : "behaviour", summary: plugin.summary,
                       file: plugin.file, version: generations.first?.version ?? "",
                       defaultPort: plugin.defaultPort.map(Int.init),
                       parameters: plugin.parameters.map { parameter in
                           Parameter(name: parameter.name, type: "\(parameter.type)",
                                     default: parameter.defaultText, description: parameter.doc)
                       },
                       generations: generations)
        }
        self.refused = refused.map { Refusal(file: $0.file, reason: $0.reason.description) }
        cynic = loader
    }

    /// This listing as the API writes it: one line, keys sorted.
    public var json: String {
        String(decoding: JSONResponse.encode(self), as: UTF8.self)
    }
}
