import ArgumentParser
import CynicControl
import CynicPlugins
import CynicRuntime
import Foundation
import Logging

struct PluginsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plugins",
        abstract: "List the behaviours found, with their parameters, and every plugin file refused.",
        discussion: """
            Starts with this cynic's version and plugin ABI; ends with what each cynic running for \
            this user serves. --json prints the plugins found and refused as the control API's \
            GET /plugins answers them, with the version and ABI under "cynic" (a running cynic's \
            generations: GET /plugins of its control API, or `cynic ctl plugins --json`).
            """)

    @OptionGroup var plugins: PluginOptions

    @Flag(help: "Print one JSON object, for scripts: the plugins found and refused, this cynic's version and ABI.")
    var json = false

    func run() throws {
        let catalog: PluginCatalog
        do {
            catalog = try PluginCatalog.load(plugins.searchPath, trust: plugins.trust.trust)
        } catch {
            throw failure("\(error)")
        }
        if json {
            print(PluginsJSON(catalog: catalog).json)
            return
        }
        print(CynicVersion.line)
        print("")
        for plugin in catalog.sortedPlugins {
            let origin = plugins.searchPath.first { plugin.file.hasPrefix($0.path + "/") }?.origin
            for line in plugin.descriptionLines(origin: origin) { print(line) }
        }
        if !catalog.refusals.isEmpty {
            print("")
            for refusal in catalog.refusals { print(refusal) }
        }
        for (pid, status) in RunningCynics.statuses() {
            print("")
            print("running cynic, pid \(pid):")
            for line in status.split(separator: "\n", omittingEmptySubsequences: false) where !line.isEmpty {
                print("  \(line)")
            }
        }
    }
}

/// The cynics running for this user, found by their status sockets.
enum RunningCynics {
    static func statuses() -> [(pid: Int32, status: String)] {
        guard let directory = try? privateDirectory(), let entries = try? FileManager.default.contentsOfDirectory(atPath: directory) else {
            return []
        }
        var found: [(Int32, String)] = []
        for entry in entries.sorted() where entry.hasPrefix("cynic-") && entry.hasSuffix(".status") {
            guard let pid = Int32(entry.dropFirst(6).dropLast(7)) else { continue }
            let path = directory + "/" + entry
            if kill(pid, 0) != 0, errno == ESRCH {
                unlink(path)  // left by a cynic that did not stop cleanly
                continue
            }
            if pid != getpid(), let status = read(path) { found.append((pid, status)) }
        }
        return found
    }

    /// Everything the socket at `path` says before EOF, within two seconds.
    private static func read(_ path: String) -> String? {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return nil }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes + [0]) }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else { return nil }
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = recv(fd, &buffer, buffer.count, 0)
            if count <= 0 { break }
            data += buffer[..<count]
            if data.count > 1 << 20 { break }
        }
        return String(decoding: data, as: UTF8.self)
    }
}
