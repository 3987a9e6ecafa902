import ArgumentParser
import CynicPlugins
import Logging

struct PluginsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plugins",
        abstract: "List the behaviours found, with their parameters, and every plugin file refused.")

    @OptionGroup var plugins: PluginOptions

    func run() throws {
        let catalog: PluginCatalog
        do {
            catalog = try PluginCatalog.load(plugins.searchPath)
        } catch {
            throw failure("\(error)")
        }
        for plugin in catalog.sortedPlugins {
            let port = plugin.defaultPort.map { "default port \($0)" } ?? "no default port"
            let kind = plugin.speaksHTTP1 ? "HTTP/1.x" : "raw TCP"
            print("\(plugin.name) — \(plugin.summary)")
            print("    file: \(plugin.file)")
            print("    ABI \(plugin.abiVersion), \(kind), \(port)")
            for parameter in plugin.parameters {
                let fallback = parameter.defaultText.map { "default \($0)" }
                    ?? (parameter.type == .string ? "default unset" : "required")
                let doc = parameter.doc.isEmpty ? "" : " — \(parameter.doc)"
                print("    param \(parameter.name): \(parameter.type.cName), \(fallback)\(doc)")
            }
        }
        if !catalog.refusals.isEmpty {
            print("")
            for refusal in catalog.refusals { print(refusal) }
        }
    }
}
