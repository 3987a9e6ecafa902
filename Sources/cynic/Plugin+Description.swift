import CynicPlugins

extension Plugin {
    /// What `cynic plugins` and `cynic check` print about a plugin: its name and summary, file
    /// (and, given, which search folder it came from), ABI, kind, default port, and each
    /// parameter with its C type and default.
    func descriptionLines(origin: String? = nil) -> [String] {
        let port = defaultPort.map { "default port \($0)" } ?? "no default port"
        let kind = isShaper ? "shaper (--shape \(name):...)" : speaksHTTP1 ? "HTTP/1.x behaviour" : "raw TCP behaviour"
        let code = staysMapped ? "links the Swift runtime: stays mapped once loaded" : "unloaded when unused"
        var lines = ["\(name) — \(summary)",
                     "    file: \(file)\(origin.map { " (\($0))" } ?? "")",
                     "    ABI \(abiVersion), \(kind)\(isShaper ? "" : ", \(port)"), \(code)"]
        for parameter in parameters {
            let fallback = parameter.defaultText.map { "default \($0)" }
                ?? (parameter.type == .string ? "default unset" : "required")
            let doc = parameter.doc.isEmpty ? "" : " — \(parameter.doc)"
            lines.append("    param \(parameter.name): \(parameter.type.cName), \(fallback)\(doc)")
        }
        return lines
    }
}
