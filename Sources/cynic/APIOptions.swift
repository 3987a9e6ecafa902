import ArgumentParser
import CynicConfig
import Foundation

/// Where the control API listens, and its token (docs/control-api.md).
struct APIOptions: ParsableArguments {
    @Option(name: .customLong("api"), help: ArgumentHelp(
        "Serve the control API here: HOST:PORT, [IPv6]:PORT, :PORT or unix:/path (127.0.0.1:0: any free port; the line printed says which).",
        valueName: "ADDR"))
    var address: String?

    @Flag(name: .customLong("no-api"), help: "Do not serve the control API.")
    var disabled = false

    @Option(name: .customLong("api-token"), help: ArgumentHelp(
        "Require this token of every API request (Authorization: Bearer TOKEN); needed beyond loopback.", valueName: "TOKEN"))
    var token: String?

    @Option(name: .customLong("api-token-file"), help: ArgumentHelp("Read the API token from this file.", valueName: "FILE"))
    var tokenFile: String?

    /// The control API's default address when cynic runs its services: toxiproxy's port, so its
    /// clients find cynic where they look.
    static let defaultAddress = "127.0.0.1:8474"

    /// What to serve: nil for no API. Without --api the API listens on `defaultAddress` when one
    /// is given (and a busy port is then only a warning), else not at all.
    func settings(defaultAddress: String?) throws -> APISettings? {
        if disabled, address != nil { throw ValidationError("give either --api or --no-api, not both") }
        if token != nil, tokenFile != nil { throw ValidationError("give either --api-token or --api-token-file, not both") }
        guard !disabled, let text = address ?? defaultAddress else { return nil }
        let parsed: ServiceAddress
        switch ServiceAddress.parse(text) {
        case .success(let address): parsed = address
        case .failure(let error): throw ValidationError("--api \(text): \(error)")
        }
        let token = try readToken()
        if !parsed.isLoopback, token == nil {
            throw ValidationError("--api \(text) is reachable beyond this machine: anyone who reaches it could change what cynic serves; give it a token with --api-token or --api-token-file")
        }
        return APISettings(address: parsed, token: token, required: address != nil)
    }

    private func readToken() throws -> String? {
        if let token {
            guard !token.isEmpty else { throw ValidationError("--api-token: the token is empty") }
            return token
        }
        guard let tokenFile else { return nil }
        let text: String
        do {
            text = try String(contentsOfFile: tokenFile, encoding: .utf8)
        } catch {
            throw ValidationError("--api-token-file \(tokenFile): cannot read it: \(error.localizedDescription)")
        }
        let token = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !token.isEmpty else { throw ValidationError("--api-token-file \(tokenFile): the file is empty") }
        return token
    }
}

/// The control API to serve.
struct APISettings {
    let address: ServiceAddress
    let token: String?
    /// Asked for with --api: failing to bind it stops cynic. The default address only warns.
    let required: Bool
}
